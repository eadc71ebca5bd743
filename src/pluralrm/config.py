"""Every stage's defaults, stated once: small frozen dataclasses read by the library, the CLI and the demo.

Each field carries its help text in ``metadata["help"]``; the CLI derives its options from the fields (flag,
type, default and help: :func:`pluralrm.cli.options.config_options`), library functions take their keyword
defaults from the instances below, and ``tests/test_config.py`` fails if a Typer option or a library
default and its field ever disagree. Change a default here and it changes everywhere; add a field and a
verb that exposes its config gets the option.

No torch, no numpy: importing this module is free.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class FeaturizeConfig:
    """How (prompt, response) texts become feature vectors."""

    backbone: str = _setting("minilm", "'minilm', 'smollm2', a model directory or a hub id.")
    pooling: str | None = _setting(None, "'last' or 'mean' (default: by backbone kind).")
    layer: int = _setting(-1, "Hidden-state index: 0 = embeddings, -1 = final layer.")
    max_length: int = _setting(512, "Tokens per text; longer texts lose their start.")
    batch_size: int = _setting(64, "Most texts per forward pass.")
    # Small on purpose: on CPU, activations of a large batch fall out of cache (docs/reference/backbones.md).
    max_batch_tokens: int = _setting(2048, "Most padded tokens per forward pass.")
    device: str = _setting("auto", "auto, cpu or cuda (auto: cuda when available).")
    dtype: str = _setting(
        "auto", "auto, float32 or bfloat16 (auto: bfloat16 on CUDA, on CPU only where measured faster)."
    )
    flush_every: int = _setting(256, "Write computed vectors to the feature cache after this many texts.")
    share_prompts: bool = _setting(
        True, "Causal backbones: responses to one prompt reuse the prompt's KV cache (same features)."
    )


@dataclass(frozen=True)
class DecomposeConfig:
    """How a general head and PCA heads are fitted on pair differences."""

    n_components: int = _setting(32, "Number of reward heads to keep.")
    heads: str = _setting(
        "pca",
        "Where the heads come from: pca (of the pooled pair differences), users (top singular directions of "
        "the labelled users' own Bradley-Terry heads: a LoRe-style basis of how users differ) or auto "
        "(decompose: the one whose heads learn the pool's own users best as new users).",
    )
    center: bool = _setting(
        False, "Centre D before PCA (reference DRM) or use its second moment (keeps the consensus head)."
    )
    val_fraction: float = _setting(0.2, "Share of prompts held out to pick the general head's L2 penalty.")
    alphas: tuple[float, ...] = _setting((1e-4, 1e-3, 1e-2, 1e-1), "L2 penalties tried on validation.")
    alpha: float = _setting(1e-2, "L2 penalty of the general head when there is no validation split.")
    batch_size: int = _setting(8192, "Rows per accumulation step of the streaming PCA.")
    seed: int = _setting(0, "Seed of the validation split (kshot: also of the pool's random heads).")
    choice_k: int = _setting(
        15, "--layers/--adapters: pairs per labelled user when scoring a candidate (how learnable users are)."
    )
    choice_draws: int = _setting(
        10, "--layers/--adapters: seeded draws of those pairs per user and candidate."
    )
    choice_users: int = _setting(
        20,
        "--layers/--adapters: most labelled pool users a choice is measured on (a seeded sample of a larger "
        "pool; each is left out of the pool in turn).",
    )


@dataclass(frozen=True)
class AdaptConfig:
    """How a user's weights over heads are fitted from their labelled pairs."""

    method: str = _setting(
        "auto",
        "Adapter: auto (the one the model's decompose --adapters chose from its users, else auto_fallback), "
        "map (full weight vector, pool as a Gaussian prior), bt (full weight vector from the user's pairs "
        "alone), logistic, hyre or best-head.",
    )
    auto_fallback: str = _setting("map", "What auto means for a model that records no adapter choice.")
    auto_candidates: tuple[str, ...] = _setting(
        ("map", "bt"),
        "What kshot's auto chooses among on each target's pool (a model: decompose --adapters).",
    )
    bt_alpha: float = _setting(
        1e-2, "bt (and kshot's user-bt): L2 penalty of the from-scratch head on scale-normalized features."
    )
    alpha: float = _setting(1.0, "Logistic: strength of the pull toward the general head's weights.")
    beta: float = _setting(1.0, "HyRe: Bradley-Terry inverse temperature on head scores.")
    temperature: float = _setting(1.0, "HyRe: softmax temperature over summed log-likelihoods.")
    zscore: bool = _setting(True, "Divide each head's scores by its RMS on the fit data before adapting.")
    map_taus: tuple[float, ...] = _setting(
        (0.0, 1.0, 10.0, 100.0, 1000.0),
        "MAP: grid of prior strengths (variance per component: general head, heads, ridge).",
    )
    map_default_taus: tuple[float, ...] = _setting(
        (10.0, 10.0, 10.0), "MAP: starting strengths (general head, heads, ridge); what k = 0 keeps."
    )
    map_signs: tuple[float, ...] = _setting(
        (1.0, 0.0, -1.0), "MAP: multipliers of the general head tried as the prior mean (first = default)."
    )
    map_sweeps: int = _setting(2, "MAP: coordinate-ascent sweeps of the marginal-likelihood search.")
    map_min_gain: float = _setting(
        1.0, "MAP: log-evidence (nats) a setting must gain over the current one to replace it."
    )


@dataclass(frozen=True)
class ActiveConfig:
    """Which pair a user is asked next (:mod:`pluralrm.adapt.active`; ``pluralrm kshot --select``)."""

    strategy: str = _setting(
        "epig",
        "Rule choosing the next pair: random, uncertainty, vote_entropy, margin_variance, bald, epig or "
        "logdet (default: the best measured, docs/reports/personalization.md).",
    )
    cold_start: str = _setting(
        "random",
        "The first pair, before any label: random (a seeded draw) or pool (the rule under the pool's prior).",
    )
    targets: int = _setting(
        256,
        "epig: candidate pairs (a seeded sample) whose labels the next pair should inform.",
    )
    shortlist: int = _setting(
        1024,
        "epig: beyond this many candidates the exact score is computed for this many, ranked first by a "
        "low-rank sketch of it (what keeps one pick among 10,000 fast).",
    )
    candidates: int = _setting(
        256,
        "kshot --select: unlabelled pairs a draw may ask from (a seeded subset of the user's adaptation "
        "pairs; 0: all of them).",
    )


@dataclass(frozen=True)
class KShotConfig:
    """How k-shot curves draw a user's labelled pairs (``pluralrm kshot``, :mod:`pluralrm.adapt.kshot`)."""

    ks: tuple[int, ...] = _setting(
        (0, 1, 3, 5, 10, 15, 20, 50, 100), "Numbers of a user's adaptation pairs each curve is measured at."
    )
    draws: int = _setting(20, "Seeded draws of k pairs per user and k (95% intervals over draws).")
    random_seeds: int = _setting(5, "Random-head baselines: seeds cycled over the draws.")


@dataclass(frozen=True)
class PopulationConfig:
    """A simulated population of many users on real responses (``pluralrm population``,
    :mod:`pluralrm.data.population`): each user a Dirichlet weight over the responses' labelled signals."""

    seen_users: int = _setting(1000, "Users whose pairs form the pool (they label pool prompts only).")
    unseen_users: int = _setting(200, "New users: adaptation and test pairs on prompts the pool never saw.")
    alpha: float = _setting(
        1.0, "Dirichlet concentration of a user's weights (0.1: one signal each; 1: mixed)."
    )
    temperature: float = _setting(
        0.1, "Bradley-Terry temperature: P(a preferred) = sigmoid((u_a - u_b) / temperature)."
    )
    seen_pairs: int = _setting(50, "Labelled pairs per seen user.")
    adapt_pairs: int = _setting(50, "Adaptation pairs per unseen user (the k-shot draws come from these).")
    test_pairs: int = _setting(100, "Test pairs per unseen user (other prompts than their adaptation pairs).")
    unseen_share: float = _setting(
        0.4, "Share of prompts kept from the pool: half for unseen users' adaptation, half for their tests."
    )
    seed: int = _setting(0, "Seed of the prompt split, the users' weights, their pairs and their labels.")


@dataclass(frozen=True)
class DemoConfig:
    """How ``pluralrm demo`` splits its pairs and personalizes its simulated users."""

    test_fraction: float = _setting(
        0.2, "Share of prompts held out as the test pairs every table is measured on (never fitted)."
    )
    adapt_pairs: int = _setting(20, "Labelled pairs each simulated user gives for personalization.")
    pairs_per_prompt: int = _setting(
        8, "Built-in data: pairs labelled per user and prompt (each response featurized once)."
    )
    seed: int = _setting(0, "Seed of the built-in data, the test split, the pool's split and the draws.")


@dataclass(frozen=True)
class ServeConfig:
    """How the reward server batches, caches and limits requests."""

    host: str = _setting("127.0.0.1", "Address to listen on (loopback by default).")
    port: int = _setting(8000, "Port to listen on.")
    max_batch_texts: int = _setting(
        64, "Most texts featurized together across concurrent requests (1: each request alone)."
    )
    max_wait_ms: float = _setting(
        0.0, "How long a lone text waits for others (0: batch what is queued when the backbone is free)."
    )
    # Offline featurization sorts a whole file by length; a server batch mixes whatever arrived, and
    # with 2,048 tokens per pass pads short texts to the longest (66 vs 86 texts/s: serve_batches.py).
    max_batch_tokens: int = _setting(512, "Most padded tokens per forward pass (a batch is split by length).")
    cache_entries: int = _setting(50_000, "Feature vectors of recent texts kept in memory (0: none).")
    profile_cache_entries: int = _setting(
        10_000, "Profiles kept in memory until the profile store changes (0: read the store per request)."
    )
    max_body_bytes: int = _setting(4 * 1024 * 1024, "Largest request body accepted (larger: HTTP 413).")
    max_texts: int = _setting(512, "Most responses or queries in one request (more: HTTP 422).")
    max_text_chars: int = _setting(32_000, "Longest prompt or response in characters (longer: HTTP 422).")
    max_pairs: int = _setting(1_000, "Most comparisons posted at once for a user.")


@dataclass(frozen=True)
class GenerateConfig:
    """How N responses per prompt are sampled, from a local LM or an OpenAI-compatible endpoint."""

    model: str = _setting(
        "smollm2", "'smollm2', a model directory or a hub id (with --endpoint: the served model's name)."
    )
    n: int = _setting(8, "Responses per prompt.")
    temperature: float = _setting(0.8, "Sampling temperature (0: greedy, one deterministic answer).")
    top_p: float = _setting(0.95, "Nucleus sampling: keep the smallest token set with this probability.")
    max_new_tokens: int = _setting(256, "Longest response in tokens (longer ones are cut: finish 'length').")
    seed: int = _setting(0, "Seed; each prompt's samples are seeded from it and the prompt's id.")
    system_prompt: str | None = _setting(None, "A system message put before every prompt (default: none).")
    batch_size: int = _setting(16, "Local: most sequences per generate call (a prompt's N are split).")
    device: str = _setting("auto", "Local: auto, cpu or cuda (auto: cuda when available).")
    dtype: str = _setting(
        "auto", "Local: auto, float32 or bfloat16 (auto: bf16 on CUDA, on CPU only where measured faster)."
    )
    concurrency: int = _setting(8, "Endpoint: prompts in flight at once.")
    retries: int = _setting(5, "Endpoint: retries of a request after a connection error, 429 or 5xx.")
    backoff_s: float = _setting(1.0, "Endpoint: first wait before a retry in seconds (doubles each time).")
    timeout_s: float = _setting(300.0, "Endpoint: seconds to wait for one response.")
    api_key_env: str = _setting("OPENAI_API_KEY", "Endpoint: environment variable holding the API key.")


@dataclass(frozen=True)
class SelectConfig:
    """How many responses per prompt are scored and selected (``pluralrm rank`` / ``pluralrm select``)."""

    method: str = _setting(
        "best-of-n", "best-of-n, top-k, top-fraction, best-vs-worst, best-vs-random or per-user."
    )
    k: int = _setting(4, "top-k: responses kept per prompt (RAFT's per-prompt selection).")
    alpha: float = _setting(0.25, "top-fraction: share of all samples kept (RAFT's global ranking).")
    seed: int = _setting(0, "best-vs-random: seed of the randomly drawn rejected response.")
    chunk_prompts: int = _setting(64, "rank: prompts featurized per step (progress and cache flushes).")


@dataclass(frozen=True)
class FinetuneConfig:
    """How a policy is fine-tuned on chosen responses (LoRA SFT, ``pluralrm sft``; one RAFT round)."""

    epochs: int = _setting(2, "Passes over the training records.")
    learning_rate: float = _setting(2e-4, "Peak AdamW learning rate of the LoRA weights (linear decay).")
    batch_size: int = _setting(4, "Records per forward pass.")
    gradient_accumulation: int = _setting(1, "Forward passes per optimizer step (effective batch: product).")
    max_length: int = _setting(512, "Tokens per record (prompt + answer); longer records lose their end.")
    lora_r: int = _setting(16, "LoRA rank of the update to each linear layer.")
    lora_alpha: int = _setting(32, "LoRA scale: the update is multiplied by lora_alpha / lora_r.")
    lora_dropout: float = _setting(0.05, "Dropout on the LoRA branch's input during training.")
    seed: int = _setting(0, "Seed of the LoRA initialization, data order and dropout.")
    device: str = _setting("auto", "auto, cpu or cuda (auto: cuda when available).")
    save_steps: int = _setting(50, "Checkpoint every this many optimizer steps (a killed run resumes there).")


@dataclass(frozen=True)
class CustomizeConfig:
    """How a reward model's backbone is fine-tuned (``pluralrm customize``: general RM, then domain RM).

    The DSP reference trains LLaMA-7B with lr 1e-6 (general) / 1e-7 (domain) for one epoch; models of
    pluralrm's test sizes (22M-135M parameters) need far larger steps, hence these defaults.
    """

    epochs: int = _setting(1, "Passes over the training pairs.")
    learning_rate: float = _setting(2e-5, "Peak AdamW learning rate (linear decay after a 5% warm-up).")
    batch_size: int = _setting(8, "Pairs per forward pass (each pair is two texts).")
    gradient_accumulation: int = _setting(1, "Forward passes per optimizer step (effective batch: product).")
    max_length: int = _setting(512, "Tokens per text; longer texts lose their beginning (as in featurize).")
    imitation: float = _setting(
        0.0, "Weight of the language-modelling loss on the chosen response (causal backbones only; 0 = off)."
    )
    enrichment: float = _setting(
        0.0, "General pairs mixed into the training pairs, as a multiple of their number (0 = none)."
    )
    head_init: str = _setting(
        "keep",
        "How the reward head starts: 'keep' (the base's head; a new one is random) or 'probe' (first fit "
        "a Bradley-Terry head on the base's frozen features of the training pairs, then fine-tune).",
    )
    lora: bool = _setting(
        False, "Train a LoRA adapter (merged into the saved model) instead of every weight."
    )
    lora_r: int = _setting(16, "LoRA rank of the update to each linear layer.")
    lora_alpha: int = _setting(32, "LoRA scale: the update is multiplied by lora_alpha / lora_r.")
    lora_dropout: float = _setting(0.05, "Dropout on the LoRA branch's input during training.")
    validation_fraction: float = _setting(
        0.1, "Share of the training prompts held out to report a validation accuracy (0 = none)."
    )
    eval_steps: int = _setting(0, "Validate every this many optimizer steps (0: at the end of each epoch).")
    save_steps: int = _setting(50, "Checkpoint every this many optimizer steps (a killed run resumes there).")
    gradient_checkpointing: bool = _setting(
        False, "Recompute activations in the backward pass (less memory)."
    )
    group_by_length: bool = _setting(True, "Batch pairs of similar length together (less padding).")
    seed: int = _setting(0, "Seed of the head initialization, data order, splits and dropout.")
    device: str = _setting("auto", "auto, cpu or cuda (auto: cuda when available).")
    dtype: str = _setting(
        "auto", "auto, float32 or bfloat16 (auto: bf16 on CUDA; on CPU only where measured faster)."
    )


@dataclass(frozen=True)
class AnalyzeConfig:
    """How a rewarded many-responses file is analysed."""

    ns: tuple[int, ...] | None = _setting(
        None, "Best-of-n sizes, comma-separated (default: 1, 2, 4, … up to the largest N, and N)."
    )
    n_bins: int = _setting(10, "Length-quantile bins of the reward-vs-length table.")
    n_resamples: int = _setting(1000, "Bootstrap resamples (over prompts) of every 95% interval.")
    seed: int = _setting(0, "Seed of the bootstrap resamples.")


@dataclass(frozen=True)
class ReportConfig:
    """What ``pluralrm report`` shows and how it names heads (docs/guides/report.md)."""

    heads: int = _setting(
        8, "Top PCA heads described in 'what each head means' (and drawn in users' weights)."
    )
    examples: int = _setting(
        3, "Pairs shown under each head, each way (the ones it separates most strongly)."
    )
    extremes: int = _setting(50, "Most decided pairs per head whose responses give its distinctive words.")
    min_correlation: float = _setting(
        0.3, "Weakest |correlation| with an attribute that may name a head (else its distinctive words do)."
    )
    n_resamples: int = _setting(1000, "Bootstrap resamples of every 95% interval of the accuracy tables.")
    seed: int = _setting(
        0, "Seed of the split of each user's prompts into weight-fitting and held-out halves."
    )
    skip_invalid: bool = _setting(True, "Skip invalid records of --data (the data section counts them).")
    describe_url: str | None = _setting(
        None, "OpenAI-compatible server whose LM writes a description of each head (default: none)."
    )
    describe_model: str = _setting("default", "--describe-url: the served model's name.")


@dataclass(frozen=True)
class LabelConfig:
    """How the labelling web app hands out pairs, limits requests and keeps sessions (``pluralrm label``)."""

    host: str = _setting("127.0.0.1", "Address the labelling page listens on (loopback by default).")
    port: int = _setting(8010, "Port the labelling page listens on.")
    labels_per_pair: int = _setting(
        2, "Labellers each pair goes to (a pair is finished before a new one is started, so κ is measurable)."
    )
    budget: int | None = _setting(None, "Most human labels in all, skips not counted (default: no limit).")
    reserve_seconds: float = _setting(
        900.0, "How long a pair shown to a labeller stays reserved for them before others may take its place."
    )
    max_body_bytes: int = _setting(64 * 1024, "Largest request body accepted (larger: HTTP 413).")
    session_hours: float = _setting(12.0, "How long a browser sign-in lasts (an expired session is refused).")
    signin_attempts: int = _setting(
        10, "Sign-in attempts allowed per labeller, and failed ones per client address, in --signin-window."
    )
    signin_window_seconds: float = _setting(900.0, "The window of --signin-attempts (past it: HTTP 429).")
    assign: str = _setting(
        "auto",
        "Who gets which pair: 'personal' (the active rule on the labeller's own profile; needs a reward "
        "model, i.e. pluralrm serve --label), 'shared' (--labels-per-pair labellers per pair, AI-uncertain "
        "first), 'auto' (personal under pluralrm serve, shared under pluralrm label serve).",
    )
    strategy: str | None = _setting(
        None, "Personal assignment: the active-selection rule (default: pluralrm.adapt.active's; 'random')."
    )
    tags: tuple[str, ...] = _setting(
        ("helpful", "correct", "clear", "safe", "concise"), "Reason tags a labeller may tick."
    )


@dataclass(frozen=True)
class CollectConfig:
    """How ``pluralrm collect`` builds preference data: prompts → responses → filtering (Hu et al. 2024)."""

    dedup_threshold: float = _setting(
        0.95, "Prompts: drop a prompt whose embedding cosine to a kept one is at least this (1 = exact only)."
    )
    max_prompts: int | None = _setting(None, "Prompts: keep at most this many, spread over clusters.")
    n_clusters: int = _setting(8, "Prompts: k-means clusters the --max-prompts selection covers evenly.")
    expand: int = _setting(0, "Prompts: new prompts a local LM writes from examples (self-instruct).")
    keep_by_reward: int | None = _setting(
        None, "Prompts: keep this many by the current reward's scores of sampled responses (--rewarded)."
    )
    reward_rule: str = _setting(
        "spread", "Prompts: 'spread' keeps the widest-spread rewards, 'low' the lowest mean reward."
    )
    n: int = _setting(4, "Responses: responses per prompt from each generator setting.")
    temperatures: tuple[float, ...] = _setting((0.8,), "Responses: sampling temperatures, comma-separated.")
    max_new_tokens: int = _setting(256, "Responses: longest response in tokens (longer: 'truncated').")
    min_chars: int = _setting(2, "Filter: responses shorter than this (stripped) are 'empty'.")
    ngram: int = _setting(4, "Filter: word n-gram length of the repetition rule.")
    max_repeated: float = _setting(
        0.3, "Filter: drop a response when this share of its word n-grams are repeats."
    )
    min_stopwords: float = _setting(
        0.08, "Filter: English stop-word share of the prose lines below which it is 'wrong language'."
    )
    skip_rules: tuple[str, ...] = _setting(
        (), "Filter: response rules not to apply (e.g. refusal, when some users may want refusals)."
    )
    near_identical: float = _setting(
        0.9, "Filter: drop a pair whose two responses' character similarity is at least this."
    )
    pairs_per_prompt: int = _setting(4, "Filter: most pairs made from one prompt's surviving responses.")
    ai_fraction: float = _setting(
        0.5, "Filter: share of pairs, largest reward margin first, that the AI judge labels."
    )
    ai_margin: float | None = _setting(
        None, "Filter: AI-label every pair with |reward margin| at least this (instead of --ai-fraction)."
    )
    label_budget: int | None = _setting(
        None, "Filter: most pairs sent to people, most uncertain first (default: all the rest)."
    )
    seed: int = _setting(0, "Seed of sampling, clustering and pair choice.")


@dataclass(frozen=True)
class EngineConfig:
    """Where featurization, scoring and PCA sums run: this process or a Ray cluster (docs/guides/scale.md)."""

    engine: str = _setting("local", "local (this process, the default) or ray (Ray Data + backbone actors).")
    address: str | None = _setting(
        None, "Ray cluster to join: auto, ray://host:10001 (default: start Ray on this machine)."
    )
    num_workers: int = _setting(1, "Ray: backbone-holding actors (one per GPU, or per group of CPUs).")
    gpus_per_worker: float = _setting(0.0, "Ray: GPUs each actor reserves (1 on a GPU node; 0 on CPU).")
    cpus_per_worker: float = _setting(1.0, "Ray: CPUs each actor reserves (its torch threads).")
    rows_per_batch: int = _setting(
        512, "Ray: texts handed to an actor at once (it length-sorts them into forward passes)."
    )
    shard_rows: int = _setting(65_536, "Ray decompose: pairs each shard actor holds (its share of D).")


FEATURIZE = FeaturizeConfig()
DECOMPOSE = DecomposeConfig()
ADAPT = AdaptConfig()
ACTIVE = ActiveConfig()
KSHOT = KShotConfig()
DEMO = DemoConfig()
POPULATION = PopulationConfig()
SERVE = ServeConfig()
SELECT = SelectConfig()
ANALYZE = AnalyzeConfig()
REPORT = ReportConfig()
GENERATE = GenerateConfig()
FINETUNE = FinetuneConfig()
CUSTOMIZE = CustomizeConfig()
LABEL = LabelConfig()
ENGINE = EngineConfig()
COLLECT = CollectConfig()
# The demo keeps fewer heads: its built-in data has six known attributes, and 16 heads are easier to read.
DEMO_DECOMPOSE = replace(DECOMPOSE, n_components=16)


def help_of(config: type, name: str) -> str:
    """The help text of field ``name`` of a config class."""
    for f in fields(config):
        if f.name == name:
            return f.metadata["help"]
    raise KeyError(f"{config.__name__} has no field {name!r}")


__all__ = [
    "ACTIVE",
    "ADAPT",
    "ANALYZE",
    "COLLECT",
    "CUSTOMIZE",
    "DECOMPOSE",
    "DEMO",
    "DEMO_DECOMPOSE",
    "ENGINE",
    "FEATURIZE",
    "FINETUNE",
    "GENERATE",
    "KSHOT",
    "LABEL",
    "REPORT",
    "SELECT",
    "SERVE",
    "ActiveConfig",
    "AdaptConfig",
    "AnalyzeConfig",
    "CollectConfig",
    "CustomizeConfig",
    "DecomposeConfig",
    "DemoConfig",
    "EngineConfig",
    "FeaturizeConfig",
    "FinetuneConfig",
    "GenerateConfig",
    "KShotConfig",
    "LabelConfig",
    "ReportConfig",
    "SelectConfig",
    "ServeConfig",
    "help_of",
    "replace",
]
