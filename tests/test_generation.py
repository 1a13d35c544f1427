"""Base answers come from the base weights: the seed article's in-place PeftModel bug, fixed and proved."""

from core.models import generation

PROMPTS = [
    [{"role": "user", "content": "My tent arrived torn. What now?"}],
    [{"role": "system", "content": "You triage tickets."}, {"role": "user", "content": "Refund still missing after 3 weeks."}],
    [{"role": "user", "content": "Do you ship to Canada?"}],
]
CONFIG = generation.GenerationConfig(max_new_tokens=20, batch_size=3)


def token_ids(tokenizer, texts):
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def test_base_answers_equal_a_fresh_base_model_token_for_token(model_dir, random_adapter):
    fresh, fresh_tokenizer = generation.load_base(generation.registry.DEFAULT_MODEL)
    expected = generation.generate(fresh, fresh_tokenizer, PROMPTS, CONFIG)
    del fresh

    with_adapter, tokenizer = generation.load_with_adapter(generation.registry.DEFAULT_MODEL, random_adapter)
    base = generation.generate(with_adapter, tokenizer, PROMPTS, CONFIG, side="base")
    tuned = generation.generate(with_adapter, tokenizer, PROMPTS, CONFIG, side="tuned")

    assert token_ids(tokenizer, base) == token_ids(fresh_tokenizer, expected)
    assert tuned != base  # the adapter really is active outside the base context


def test_batched_left_padding_matches_one_at_a_time(model_dir):
    model, tokenizer = generation.load_base(generation.registry.DEFAULT_MODEL)
    batched = generation.generate(model, tokenizer, PROMPTS, CONFIG)
    single = [generation.generate(model, tokenizer, [p], CONFIG)[0] for p in PROMPTS]
    assert batched == single


def test_identity_leak_and_identical_flags():
    assert "names_model" in generation.flags_for("As a fine-tuned model, I think…", "other")
    assert "identical" in generation.flags_for("same", "same ")
    assert generation.flags_for("Category: Billing", "Category: Returns") == []
