"""`ScratchLM`: a scratchlm checkpoint as an lm-evaluation-harness model, registered as "scratchlm".

It answers the harness's three request types with our own model and tokenizer (no export, no
`transformers`), the way the harness's `hf` backend does for a Hugging Face model, so the two give
the same numbers on an exported checkpoint:

- loglikelihood: context and continuation are tokenized as the harness's `TemplateLM` does (an
  empty context becomes the end-of-text id); requests are sorted longest first and batched, one
  forward per batch over context + continuation, cut to the last context_length + 1 ids. Only the
  continuation's positions go through the output head. Each answer is the continuation's summed
  log-probability and whether every continuation token is the argmax.
- loglikelihood_rolling: a whole document as the harness's disjoint rolling windows of
  context_length (the first conditioned on the end-of-text id), scored as above and summed.
- generate_until: our KV-cache decoding (`scratchlm.model.generate.stream`), batched per set of
  generation arguments; each row stops at a stop string (cut off), at the end-of-text id (for a
  chat checkpoint also at the chat special tokens) or after max_gen_toks. The prompt keeps its
  last context_length - max_gen_toks ids.
- apply_chat_template: a chat checkpoint renders the harness's messages with our chat template.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import normalize_gen_kwargs
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from scratchlm.inference.engine import END_OF_TEXT, Engine
from scratchlm.inference.text import TextAssembler
from scratchlm.model.generate import SamplingConfig, stream
from scratchlm.tokenizer import chat

log = logging.getLogger(__name__)

# A loglikelihood request after tokenization: (cache key or None, context ids, continuation ids).
TokenRequest = tuple[tuple[str, str] | None, list[int], list[int]]
SAMPLING_SEED = 1234  # generate_until with do_sample=True draws from this seed


@register_model("scratchlm")
class ScratchLM(TemplateLM):
    """A checkpoint directory (or a run directory's newest checkpoint) for `lm_eval`.

    batch_size: requests per forward pass (an int; the harness's "auto" is not supported).
    max_gen_toks: generate_until's default length when a task does not set one.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        batch_size: int | str = 16,
        device: str = "auto",
        max_gen_toks: int = 256,
        **unused: Any,
    ) -> None:
        super().__init__()
        if unused:
            log.warning("scratchlm model: ignoring arguments %s", ", ".join(sorted(unused)))
        if not str(batch_size).isdigit() or int(batch_size) < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.engine = Engine.from_checkpoint(checkpoint, device)
        self.model, self.tokenizer = self.engine.model, self.engine.tokenizer
        if END_OF_TEXT not in self.tokenizer.special_ids:
            raise ValueError(f"the tokenizer of {checkpoint} has no {END_OF_TEXT} token")
        self.batch_size = int(batch_size)
        self._max_gen_toks = max_gen_toks
        self._device = self.engine.device
        self.checkpoint = str(checkpoint)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.special_ids[END_OF_TEXT]

    @property
    def max_length(self) -> int:
        return self.model.config.context_length

    @property
    def tokenizer_name(self) -> str:
        return self.engine.name

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **_: Any
    ) -> list[int]:
        """Our ids for `string` (special tokens in it become their ids; nothing is added)."""
        return self.tokenizer.encode(string)

    def get_model_info(self) -> dict[str, Any]:
        """What the harness records about the model in its results' config."""
        return {
            "checkpoint": self.checkpoint,
            "model_num_parameters": sum(p.numel() for p in self.model.parameters()),
            "context_length": self.max_length,
        }

    # ---------------------------------------------------------------------- loglikelihood

    def _loglikelihood_tokens(
        self, requests: Sequence[TokenRequest], disable_tqdm: bool = False, **_: Any
    ) -> list[tuple[float, bool]]:
        """(summed log-probability of the continuation, is it the greedy one) per request."""
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][1] + requests[i][2]))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
        bar = tqdm(
            total=len(requests), desc="loglikelihood", disable=True if disable_tqdm else None
        )
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            scores = self._score([requests[i][1] for i in rows], [requests[i][2] for i in rows])
            for i, score in zip(rows, scores, strict=True):
                results[i] = score
                if requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], score)
            bar.update(len(rows))
        bar.close()
        return results

    @torch.no_grad()
    def _score(
        self, contexts: list[list[int]], continuations: list[list[int]]
    ) -> list[tuple[float, bool]]:
        """One forward over the batch: B rows of context + continuation, right-padded."""
        limit = self.max_length
        inputs = []
        for context, continuation in zip(contexts, continuations, strict=True):
            if not context or not continuation:
                raise ValueError("a loglikelihood request needs a context and a continuation")
            if len(continuation) > limit:
                raise ValueError(
                    f"a continuation of {len(continuation)} tokens exceeds the model's "
                    f"context_length {limit}"
                )
            inputs.append((context + continuation)[-(limit + 1) : -1])
        ids = torch.zeros(len(inputs), max(len(x) for x in inputs), dtype=torch.long)
        for row, x in enumerate(inputs):
            ids[row, : len(x)] = torch.tensor(x)
        hidden = self.model.hidden_states(ids.to(self._device))  # (B, L, C)
        rows = [r for r, c in enumerate(continuations) for _ in c]
        positions = [
            p
            for x, c in zip(inputs, continuations, strict=True)
            for p in range(len(x) - len(c), len(x))
        ]
        logits = F.linear(hidden[rows, positions], self.model.head_weight).float()  # (N, V)
        targets = torch.tensor([t for c in continuations for t in c], device=self._device)
        logprobs = logits.log_softmax(dim=-1)
        token_logprobs = (
            logprobs.gather(1, targets[:, None]).squeeze(1).split([len(c) for c in continuations])
        )
        greedy = (logprobs.argmax(dim=-1) == targets).split([len(c) for c in continuations])
        return [
            (float(lp.sum()), bool(g.all())) for lp, g in zip(token_logprobs, greedy, strict=True)
        ]

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        """Log-likelihood of each whole document, in disjoint windows of context_length."""
        windows: list[TokenRequest] = []
        owners: list[int] = []
        for n, (text,) in enumerate(req.args for req in requests):
            pairs = get_rolling_token_windows(
                token_list=self.tok_encode(text),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            for context, continuation in map(make_disjoint_window, pairs):
                windows.append((None, context, continuation))
                owners.append(n)
        totals = [0.0] * len(requests)
        scores = self._loglikelihood_tokens(windows, disable_tqdm)
        for n, (logprob, _) in zip(owners, scores, strict=True):
            totals[n] += logprob
        for req, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    # ---------------------------------------------------------------------- generation

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """The text generated after each context, cut before the first stop string."""
        results: list[str] = [""] * len(requests)
        groups: dict[str, list[int]] = {}
        for n, req in enumerate(requests):
            groups.setdefault(repr(sorted(req.args[1].items())), []).append(n)
        bar = tqdm(total=len(requests), desc="generate", disable=True if disable_tqdm else None)
        for members in groups.values():
            config, stops = self._sampling(requests[members[0]].args[1])
            room = self.max_length - config.max_new_tokens
            prompts = {n: self._prompt_ids(requests[n].args[0], room) for n in members}
            members.sort(key=lambda n: -len(prompts[n]))
            for start in range(0, len(members), self.batch_size):
                rows = members[start : start + self.batch_size]
                texts = self._generate([prompts[n] for n in rows], config, stops)
                for n, text in zip(rows, texts, strict=True):
                    results[n] = text
                    self.cache_hook.add_partial("generate_until", requests[n].args, text)
                bar.update(len(rows))
        bar.close()
        return results

    def _sampling(self, gen_kwargs: dict[str, Any]) -> tuple[SamplingConfig, tuple[str, ...]]:
        """The SamplingConfig and stop strings of one request's generation arguments."""
        kwargs = normalize_gen_kwargs(gen_kwargs, self._max_gen_toks)
        max_new = kwargs["max_gen_toks"]
        if max_new >= self.max_length:
            log.warning(
                "max_gen_toks %d leaves no room for a prompt in context_length %d: using %d",
                max_new,
                self.max_length,
                self.max_length // 2,
            )
            max_new = self.max_length // 2
        stop_ids = self.engine.chat_stop_ids if self.engine.chat else self.engine.text_stop_ids
        config = SamplingConfig(
            max_new_tokens=max_new,
            temperature=float(kwargs["temperature"]) if kwargs["do_sample"] else 0.0,
            top_k=kwargs.get("top_k"),
            top_p=float(kwargs.get("top_p") or 1.0),
            stop_ids=stop_ids,
        )
        return config, tuple(s for s in kwargs["until"] if s)

    def _prompt_ids(self, context: str, room: int) -> list[int]:
        """The context's last `room` ids; an empty context is the end-of-text id."""
        return (self.tok_encode(context) or [self.eot_token_id])[-room:]

    def _generate(
        self, prompts: list[list[int]], config: SamplingConfig, stops: tuple[str, ...]
    ) -> list[str]:
        """Decode the prompts together until every row met a stop id or a stop string."""
        generator = torch.Generator(device=self._device).manual_seed(SAMPLING_SEED)
        texts = [TextAssembler(stops) for _ in prompts]
        pieces: list[list[str]] = [[] for _ in prompts]
        done = [False] * len(prompts)
        vocab, stop_ids = self.tokenizer.vocab, set(config.stop_ids)
        for step in stream(self.model, prompts, config, generator):
            for row, token in enumerate(step):
                if done[row] or token is None or token in stop_ids:
                    done[row] = True
                    continue
                pieces[row].append(texts[row].push(vocab[token]))
                done[row] = texts[row].stopped
            if all(done):
                break
        return ["".join(p) + t.finish() for p, t in zip(pieces, texts, strict=True)]

    # ---------------------------------------------------------------------- chat

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The messages in our chat template, as text (its special tokens encode to their ids).

        With add_generation_prompt the text ends where the assistant's reply starts; without, the
        last message (the assistant's, prefilled) stays open, without its end-of-turn token.
        """
        if not self.engine.chat:
            raise ValueError(
                f"{self.checkpoint} is a base model without chat tokens: evaluate it without "
                "--apply-chat-template"
            )
        turns = [chat.ROLES[m["role"]] + m["content"] + chat.END for m in chat_history]
        text = chat.BOS + "".join(turns)
        return text + chat.ASSISTANT if add_generation_prompt else text.removesuffix(chat.END)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """The template's shape, for the harness's records (it is rendered in Python)."""
        if not chat_template or not self.engine.chat:
            return None
        return f"{chat.BOS}(<|role|>content{chat.END})*{chat.ASSISTANT}"
