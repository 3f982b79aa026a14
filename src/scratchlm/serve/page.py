"""The single-page chat UI served at `/`: plain HTML and JavaScript, no build step, no CDN.

It keeps the conversation in the page, posts it to /v1/chat/completions with `"stream": true` and
appends each streamed piece to the assistant's bubble as it arrives. It learns the model's context
length from /v1/models (`max_model_len`), starts "max tokens" at min(200, half of it), and before
each turn fits the conversation as the chat CLI does: it drops the oldest messages (asking
/tokenize for the token count) until the prompt leaves room for min(max tokens, half the context),
and lowers max tokens to what is left. Dropped messages stay on screen, greyed. A turn that fails
(an error from the server, or a message too long for the context) leaves the conversation as it
was: the message goes back into the input box and the error is shown. A reply without text shows a
note instead of an empty bubble.

For the browser test: `document.body.dataset.state` is "busy" while a turn runs (else "idle"),
`dataset.context` holds the context length once known, and each assistant bubble counts the
pieces it received in `data-chunks`.
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
  .note { align-self: flex-start; color: #777; font-style: italic; }
  .error { align-self: center; color: #a00; }
  .forgotten { opacity: 0.45; }
  form { display: flex; gap: 0.5rem; padding: 0.8rem 1rem; border-top: 1px solid #ddd;
         background: #fff; }
  textarea { flex: 1; resize: none; font: inherit; padding: 0.4rem; }
  button { font: inherit; padding: 0 1rem; }
</style>
</head>
<body data-state="idle">
<header>
  <strong>scratchlm</strong>
  <span id="context"></span>
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
const conversation = [];  // the messages the model sees, oldest first
const shown = [];  // the element showing each of them
let context = null;  // the model's context length in tokens, once /v1/models has told it
const box = document.getElementById("messages");
const promptBox = document.getElementById("prompt");
const maxTokensBox = document.getElementById("max-tokens");

function show(className, text) {
  const div = document.createElement("div");
  div.className = className;
  div.textContent = text;
  box.appendChild(div);
  box.scrollTop = box.scrollHeight;
  return div;
}

async function postJSON(url, body) {
  const resp = await fetch(url, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  if (!resp.ok) {
    const err = await resp.json().catch(() => ({}));
    throw new Error((err.error && err.error.message) || resp.statusText);
  }
  return resp;
}

async function countTokens(messages) {
  return (await (await postJSON("/tokenize", {messages})).json()).count;
}

// As the chat CLI does: drop the oldest messages (never the last) until the prompt leaves room
// for min(max tokens, half the context); returns how many to drop and the max tokens that fit.
async function fit(maxTokens) {
  if (context === null) return {start: 0, maxTokens};
  const want = Math.min(maxTokens, Math.floor(context / 2));
  let start = 0;
  let count = await countTokens(conversation);
  while (count + want > context && start < conversation.length - 1) {
    start += 1;
    count = await countTokens(conversation.slice(start));
  }
  if (count >= context) {
    throw new Error(`the prompt has ${count} tokens and fills the model's context of ` +
                    `${context}; shorten the message`);
  }
  return {start, maxTokens: Math.min(maxTokens, context - count)};
}

function forget(count) {
  for (const element of shown.splice(0, count)) {
    element.classList.add("forgotten");
    element.title = "no longer in the model's context";
  }
  conversation.splice(0, count);
}

async function streamReply(messages, maxTokens) {
  const resp = await postJSON("/v1/chat/completions", {
    messages, stream: true, max_tokens: maxTokens,
    temperature: Number(document.getElementById("temperature").value),
  });
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let out = null;  // the reply's bubble, made when its first piece arrives
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return out;
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
          out = out || show("msg assistant", "");
          out.textContent += piece;
          out.dataset.chunks = String(Number(out.dataset.chunks || 0) + 1);
          box.scrollTop = box.scrollHeight;
        }
      }
    }
  } catch (err) {
    if (out) out.remove();
    throw err;
  }
}

async function send(text) {
  document.body.dataset.state = "busy";
  conversation.push({role: "user", content: text});
  shown.push(show("msg user", text));
  try {
    const wanted = Number(maxTokensBox.value);
    if (!Number.isInteger(wanted) || wanted < 1) {
      throw new Error("max tokens must be a whole number of at least 1");
    }
    const {start, maxTokens} = await fit(wanted);
    const out = await streamReply(conversation.slice(start), maxTokens);
    forget(start);
    conversation.push({role: "assistant", content: out ? out.textContent : ""});
    shown.push(out || show("note", "(the model ended its reply without any text)"));
  } catch (err) {
    // The turn did not happen: the message leaves the conversation and goes back to the box.
    conversation.pop();
    shown.pop().remove();
    if (!promptBox.value) promptBox.value = text;
    show("error", "error: " + err.message);
  } finally {
    document.body.dataset.state = "idle";
  }
}

async function learnContext() {
  try {
    const models = await (await fetch("/v1/models")).json();
    const length = models.data[0].max_model_len;
    if (!Number.isInteger(length)) return;
    context = length;
    maxTokensBox.value = String(Math.min(200, Math.floor(context / 2)));
    maxTokensBox.max = String(context - 1);
    document.getElementById("context").textContent = `context ${context} tokens`;
    document.body.dataset.context = String(context);
  } catch (err) {
    show("error", "error: could not read the model's context length: " + err.message);
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
  conversation.length = 0;
  shown.length = 0;
  box.textContent = "";
});
learnContext();
</script>
</body>
</html>
"""
