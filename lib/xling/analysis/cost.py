"""What a million posts cost: a machine's price per hour over the measured posts per second, beside
commercial APIs' published token prices.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

#: Published API prices, $ per 1M tokens (input, output), as docs/FACTS.md gives them.
API_PRICES = {"gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60)}


#: The paper's speed and cost claims (docs/FACTS.md).
PAPER_CLAIMS = {
    "speed_up_v2": "26-168x faster inference than commercial LLMs (abstract v2)",
    "cost_v2": "over 1000x cost savings (abstract v2)",
    "v1": "35x faster at 0.00000989% of GPT-4o's cost (abstract v1)",
}


def dollars_per_million_posts(posts_per_s: float, price_per_hour: float) -> float:
    """Machine cost of 1M posts at ``posts_per_s`` on a machine at ``price_per_hour``."""
    return price_per_hour / 3600 / posts_per_s * 1e6


def api_dollars_per_million_posts(in_tokens: float, out_tokens: float, api: str) -> float:
    """API cost of 1M posts with ``in_tokens`` prompt and ``out_tokens`` answer tokens each."""
    p_in, p_out = API_PRICES[api]
    return in_tokens * p_in + out_tokens * p_out


def cost_rows(rates: dict[str, float], in_tokens: float, out_tokens: float, price_per_hour: float):
    """$ per 1M posts for each local configuration (name -> posts/s) and for each API, with
    the API's cost as a multiple of the local one."""
    rows = []
    for name, rate in rates.items():
        local = dollars_per_million_posts(rate, price_per_hour)
        row = {"configuration": name, "posts_per_s": rate, "usd_per_1m_posts": local}
        for api in API_PRICES:
            row[f"{api}_cost_ratio"] = (
                api_dollars_per_million_posts(in_tokens, out_tokens, api) / local
            )
        rows.append(row)
    for api in API_PRICES:
        rows.append(
            {
                "configuration": f"{api} API ({in_tokens:.0f} + {out_tokens:.1f} tokens/post)",
                "posts_per_s": None,
                "usd_per_1m_posts": api_dollars_per_million_posts(in_tokens, out_tokens, api),
            }
        )
    return pd.DataFrame(rows)


def cost_from_comparison(
    comparison: pd.DataFrame,
    posts: pd.DataFrame,
    model_folder: str | os.PathLike[str],
    prompt_format: str,
    price_per_hour: float,
    task=None,
) -> pd.DataFrame:
    """The cost table of notebook 02: the posts/s it measured per backend (mean over variants),
    the prompt tokens of its comparison posts (this model's tokenizer, ``task``'s prompt; default
    the paper's) and one answer token a post (the score method reads one)."""
    from transformers import AutoTokenizer

    from xling.models.prompts import answer_tokens, make_prompt

    tok = AutoTokenizer.from_pretrained(model_folder)
    prompt = make_prompt(prompt_format, tok, task=task)
    stem = answer_tokens(lambda s: tok(s).input_ids, prompt).stem
    lengths = [len(tok(prompt.render(t)).input_ids) + len(stem) for t in posts["text"]]
    rates = comparison.groupby("backend", sort=False)["posts_per_s"].mean().to_dict()
    return cost_rows(rates, float(np.mean(lengths)), 1.0, price_per_hour)


def describe_cost(cost: pd.DataFrame, price_per_hour: float) -> list[str]:
    """Sentences computed from a cost table, beside the paper's claims."""
    local = cost[cost["posts_per_s"].notna()]
    best = local.loc[local["usd_per_1m_posts"].idxmin()]
    return [
        f"at ${price_per_hour:.2f} an hour (an assumed machine price), the cheapest here is "
        f"{best['configuration']}: ${best['usd_per_1m_posts']:.2f} per 1M posts; the same posts "
        f"through GPT-4o cost {best['gpt-4o_cost_ratio']:,.1f}x as much, through GPT-4o-mini "
        f"{best['gpt-4o-mini_cost_ratio']:,.1f}x",
        f"the paper claims {PAPER_CLAIMS['cost_v2']} and {PAPER_CLAIMS['v1']}",
    ]
