"""The chat template: special tokens appended without retraining, ids, and the loss mask."""

from pathlib import Path

import pytest

from scratchlm.tokenizer import train_bpe
from scratchlm.tokenizer.chat import (
    CHAT_SPECIAL_TOKENS,
    add_chat_tokens,
    chat_tokens,
    has_chat_tokens,
    render_conversation,
    render_prompt,
)
from scratchlm.tokenizer.tokenizer import Tokenizer

CONVERSATION = [
    {"role": "system", "content": "You tell short stories."},
    {"role": "user", "content": "Tell me about a cat."},
    {"role": "assistant", "content": "Lily had a cat named Tom."},
    {"role": "user", "content": "And then?"},
    {"role": "assistant", "content": "They played with a ball until day 3 ended."},
]


@pytest.fixture
def base_tokenizer(tmp_path: Path, corpus_text: str) -> Tokenizer:
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text, encoding="utf-8")
    vocab, merges = train_bpe(str(path), 400, ["<|endoftext|>"], num_processes=1)
    return Tokenizer(vocab, merges, ["<|endoftext|>"])


def test_chat_tokens_are_appended_after_existing_ids(base_tokenizer: Tokenizer) -> None:
    chat = add_chat_tokens(base_tokenizer)
    old_size = base_tokenizer.vocab_size
    new_ids = sorted(chat.special_ids[t] for t in CHAT_SPECIAL_TOKENS if t != "<|endoftext|>")
    assert new_ids == list(range(old_size, old_size + 4))
    assert chat.special_ids["<|endoftext|>"] == base_tokenizer.special_ids["<|endoftext|>"]
    for i, token in base_tokenizer.vocab.items():
        assert chat.vocab[i] == token
    text = "Lily found a kite near the river. <|endoftext|> Ben laughed."
    assert chat.encode(text) == base_tokenizer.encode(text)
    assert not has_chat_tokens(base_tokenizer) and has_chat_tokens(chat)
    assert add_chat_tokens(chat) is chat


def test_chat_tokenizer_survives_save_and_load(base_tokenizer: Tokenizer, tmp_path: Path) -> None:
    chat = add_chat_tokens(base_tokenizer)
    chat.save(tmp_path / "tok")
    loaded = Tokenizer.from_dir(tmp_path / "tok")
    assert chat_tokens(loaded) == chat_tokens(chat)
    assert render_conversation(loaded, CONVERSATION) == render_conversation(chat, CONVERSATION)


def test_rendered_text_follows_the_template(base_tokenizer: Tokenizer) -> None:
    chat = add_chat_tokens(base_tokenizer)
    ids, mask = render_conversation(chat, CONVERSATION)
    assert len(ids) == len(mask)
    expected = "<|endoftext|>" + "".join(
        f"<|{m['role']}|>{m['content']}<|end|>" for m in CONVERSATION
    )
    assert chat.decode(ids) == expected


def test_loss_mask_covers_exactly_the_assistant_tokens(base_tokenizer: Tokenizer) -> None:
    chat = add_chat_tokens(base_tokenizer)
    tokens = chat_tokens(chat)
    ids, mask = render_conversation(chat, CONVERSATION)
    # Rebuild the expected mask independently: walk the ids, switching on after each assistant
    # role token and off after the <|end|> that closes its turn.
    expected, inside = [], False
    for i in ids:
        expected.append(1 if inside else 0)
        if i == tokens.assistant:
            inside = True
        elif i == tokens.end:
            inside = False
    assert mask == expected
    masked = [i for i, m in zip(ids, mask, strict=True) if m]
    answers = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]
    assert chat.decode(masked) == "<|end|>".join(answers) + "<|end|>"
    assert sum(mask) == sum(len(chat.encode(a)) + 1 for a in answers)


def test_prompt_ends_with_the_assistant_header(base_tokenizer: Tokenizer) -> None:
    chat = add_chat_tokens(base_tokenizer)
    history = CONVERSATION[:4]
    prompt = render_prompt(chat, history)
    ids, _ = render_conversation(chat, history)
    assert prompt == ids + [chat_tokens(chat).assistant]
    with pytest.raises(ValueError, match="last message is the assistant"):
        render_prompt(chat, CONVERSATION)


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "non-empty"),
        ([{"role": "robot", "content": "hi"}], "role 'robot'"),
        ([{"role": "user", "content": 3}], "string 'content'"),
        ([{"role": "user", "content": "hi", "name": "x"}], "'role' and 'content' only"),
        ([{"role": "user", "content": "hi <|end|> there"}], "special token <\\|end\\|>"),
    ],
)
def test_bad_conversations_are_refused(base_tokenizer: Tokenizer, messages, match) -> None:
    chat = add_chat_tokens(base_tokenizer)
    with pytest.raises(ValueError, match=match):
        render_conversation(chat, messages)


def test_a_tokenizer_without_chat_tokens_is_refused(base_tokenizer: Tokenizer) -> None:
    with pytest.raises(ValueError, match="no chat tokens"):
        render_conversation(base_tokenizer, CONVERSATION[1:3])
