"""The single-page chat UI served at `/`: plain HTML and JavaScript, no build step, no CDN.

It keeps the conversation in the page, posts it to /v1/chat/completions with `"stream": true` and
appends each streamed piece to the assistant's bubble as it arrives. While a reply streams,
`document.body.dataset.state` is "busy" (else "idle"), and each assistant bubble counts the
pieces it received in `data-chunks`, which the browser test reads.
"""

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>scratchlm chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column;
         height: 100vh; background: #f6f6f4; color: #222; }
  header { padding: 0.6rem 1rem; background: #2d3a4a; color: #fff; display: flex; gap: 1rem;
           align-items: center; flex-wrap: wrap; font-size: 0.9rem; }
  header strong { font-size: 1rem; margin-right: auto; }
  header input { width: 4.5rem; }
  #messages { flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column;
              gap: 0.6rem; }
  .msg { max-width: 46rem; padding: 0.55rem 0.8rem; border-radius: 0.6rem; white-space: pre-wrap;
         line-height: 1.4; }
  .user { align-self: flex-end; background: #d8e6f7; }
  .assistant { align-self: flex-start; background: #fff; border: 1px solid #ddd; }
  .error { align-self: center; color: #a00; }
  form { display: flex; gap: 0.5rem; padding: 0.8rem 1rem; border-top: 1px solid #ddd;
         background: #fff; }
  textarea { flex: 1; resize: none; font: inherit; padding: 0.4rem; }
  button { font: inherit; padding: 0 1rem; }
</style>
</head>
<body data-state="idle">
<header>
  <strong>scratchlm</strong>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1"
         value="0.8"></label>
  <label>max tokens <input id="max-tokens" type="number" min="1" value="200"></label>
  <button id="clear" type="button">clear</button>
</header>
<div id="messages"></div>
<form id="form">
  <textarea id="prompt" rows="2"
            placeholder="Say something (Enter sends, Shift+Enter breaks a line)"></textarea>
  <button id="send" type="submit">Send</button>
</form>
<script>
"use strict";
const history = [];
const box = document.getElementById("messages");
const promptBox = document.getElementById("prompt");

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  box.appendChild(div);
  box.scrollTop = box.scrollHeight;
  return div;
}

async function send(text) {
  document.body.dataset.state = "busy";
  history.push({role: "user", content: text});
  bubble("user", text);
  const out = bubble("assistant", "");
  out.dataset.chunks = "0";
  const body = {
    messages: history, stream: true,
    temperature: Number(document.getElementById("temperature").value),
    max_tokens: Number(document.getElementById("max-tokens").value),
  };
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    if (!resp.ok) {
      const err = await resp.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || resp.statusText);
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
        const line = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const event = JSON.parse(data);
        if (event.error) throw new Error(event.error.message);
        const piece = event.choices.length ? event.choices[0].delta.content : "";
        if (piece) {
          out.textContent += piece;
          out.dataset.chunks = String(Number(out.dataset.chunks) + 1);
          box.scrollTop = box.scrollHeight;
        }
      }
    }
    history.push({role: "assistant", content: out.textContent});
  } catch (err) {
    history.pop();
    out.remove();
    bubble("error", "error: " + err.message);
  } finally {
    document.body.dataset.state = "idle";
  }
}

document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = promptBox.value.trim();
  if (!text || document.body.dataset.state === "busy") return;
  promptBox.value = "";
  send(text);
});
promptBox.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    document.getElementById("form").requestSubmit();
  }
});
document.getElementById("clear").addEventListener("click", () => {
  history.length = 0;
  box.textContent = "";
});
</script>
</body>
</html>
"""
