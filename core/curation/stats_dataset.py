"""Dataset statistics (the OpenAI cookbook's warnings) as numbers and plotly figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.curation.examples import Example
from core.models import templating

RECOMMENDED_MIN, RECOMMENDED_MAX = 100, 500


@dataclass(frozen=True)
class DatasetStats:
    examples: int
    messages_per_example: list[int]
    tokens_per_example: list[int]
    assistant_tokens: list[int]
    missing_system: int
    missing_user: int
    over_length: int
    max_length: int

    @property
    def advice(self) -> str:
        n = self.examples
        if n < 50:
            return f"{n} examples: too few to change behaviour reliably; aim for {RECOMMENDED_MIN}–{RECOMMENDED_MAX}."
        if n < RECOMMENDED_MIN:
            return f"{n} examples: enough for a strict format, thin for tone or domain knowledge."
        if n <= RECOMMENDED_MAX:
            return f"{n} examples: in the recommended {RECOMMENDED_MIN}–{RECOMMENDED_MAX} range."
        return f"{n} examples: plenty; check quality and duplicates rather than adding more."


def compute(examples: list[Example], model: str, max_length: int = templating.DEFAULT_MAX_LENGTH) -> DatasetStats:
    tokenizer = templating.load_tokenizer(model)
    totals, assistant = [], []
    for example in examples:
        t = templating.template_example(tokenizer, example.messages)
        totals.append(t.token_count)
        assistant.append(sum(t.assistant_mask))
    return DatasetStats(
        len(examples), [len(e.messages) for e in examples], totals, assistant,
        sum(1 for e in examples if not any(m["role"] == "system" for m in e.messages)),
        sum(1 for e in examples if not any(m["role"] == "user" for m in e.messages)),
        sum(1 for t in totals if t > max_length), max_length)


def histograms(stats: DatasetStats) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("Messages per example", "Tokens per example",
                                                          "Assistant tokens per example"))
    for col, values in enumerate((stats.messages_per_example, stats.tokens_per_example, stats.assistant_tokens), 1):
        fig.add_trace(go.Histogram(x=values, showlegend=False), row=1, col=col)
    fig.add_vline(x=stats.max_length, line_dash="dash", row=1, col=2)
    fig.update_layout(height=300, margin={"t": 40, "b": 20, "l": 20, "r": 20})
    return fig
