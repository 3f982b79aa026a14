"""The chat template: special tokens for roles, and conversations rendered to ids with a loss mask.

A conversation is a list of messages `{"role": "system" | "user" | "assistant", "content": str}`.
It renders as

    <|endoftext|><|user|>Hi there<|end|><|assistant|>Hello!<|end|>

`<|endoftext|>` opens it the way it opens every pretraining document; each message is its role
token, its content as ordinary text, then `<|end|>`. The loss mask is 1 exactly on the tokens an
assistant writes: its content and its closing `<|end|>` (so the model learns to stop), never on
the role tokens. A prompt for generation ends with `<|assistant|>`; decoding stops at `<|end|>`.

`add_chat_tokens` appends the tokens a pretrained tokenizer lacks after its last id, without
retraining: every existing id keeps its meaning, so a pretrained model only needs new embedding
rows (see `scratchlm.posttrain.vocab.resize_token_embeddings`).
"""

from dataclasses import dataclass

from scratchlm.tokenizer.tokenizer import END_OF_TEXT, Tokenizer

BOS = END_OF_TEXT  # a conversation opens the way every pretraining document does
SYSTEM = "<|system|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
END = "<|end|>"
CHAT_SPECIAL_TOKENS = (BOS, SYSTEM, USER, ASSISTANT, END)
ROLES = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}


@dataclass(frozen=True)
class ChatTokens:
    """Ids of the chat special tokens in one tokenizer."""

    bos: int
    system: int
    user: int
    assistant: int
    end: int

    def role(self, name: str) -> int:
        return {"system": self.system, "user": self.user, "assistant": self.assistant}[name]


def add_chat_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """A tokenizer with every chat special token; missing ones get new ids after the largest id.

    Returns `tokenizer` itself when nothing is missing. Existing ids never change.
    """
    missing = [tok for tok in CHAT_SPECIAL_TOKENS if tok not in tokenizer.special_ids]
    if not missing:
        return tokenizer
    return Tokenizer(tokenizer.vocab, tokenizer.merges, tokenizer.special_tokens + missing)


def has_chat_tokens(tokenizer: Tokenizer) -> bool:
    """True when the tokenizer knows every chat special token (a post-trained model's tokenizer)."""
    return all(tok in tokenizer.special_ids for tok in CHAT_SPECIAL_TOKENS)


def chat_tokens(tokenizer: Tokenizer) -> ChatTokens:
    """The ids of the chat tokens; ValueError when the tokenizer lacks them."""
    if not has_chat_tokens(tokenizer):
        raise ValueError(
            "this tokenizer has no chat tokens: use a post-trained checkpoint "
            "(scratchlm sft) or add them with scratchlm.tokenizer.chat.add_chat_tokens"
        )
    return ChatTokens(*(tokenizer.special_ids[tok] for tok in CHAT_SPECIAL_TOKENS))


def render_conversation(
    tokenizer: Tokenizer, messages: list[dict[str, str]]
) -> tuple[list[int], list[int]]:
    """Ids of the whole conversation and a same-length loss mask (1 on assistant-written tokens)."""
    tokens = chat_tokens(tokenizer)
    ids, mask = [tokens.bos], [0]
    for message in _checked(tokenizer, messages):
        content = tokenizer.encode(message["content"]) + [tokens.end]
        written = 1 if message["role"] == "assistant" else 0
        ids += [tokens.role(message["role"])] + content
        mask += [0] + [written] * len(content)
    return ids, mask


def render_prompt(tokenizer: Tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """Ids for generation: the conversation so far, then the assistant's role token.

    The last message must not be the assistant's (there would be nothing to answer).
    """
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        raise ValueError("the last message is the assistant's: a prompt must end with a user turn")
    ids, _ = render_conversation(tokenizer, messages)
    return ids + [chat_tokens(tokenizer).assistant]


def _checked(tokenizer: Tokenizer, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages, after checking roles and content; a ValueError says what is wrong."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("a conversation must be a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise ValueError(f"message {i} must be an object with 'role' and 'content' only")
        if message.get("role") not in ROLES:
            roles = ", ".join(ROLES)
            raise ValueError(f"message {i} has role {message.get('role')!r}; use one of {roles}")
        content = message.get("content")
        if not isinstance(content, str):
            raise ValueError(f"message {i} needs a string 'content'")
        for tok in tokenizer.special_tokens:
            if tok in content:
                raise ValueError(f"message {i} contains the special token {tok}; remove it")
    return messages
