"""The language-model lab: synthetic teacher languages, a tiny causal student, distillation methods and metrics.

    from kl_core import lm
    result = lm.distill("cities", method="reverse_kl", steps=300, seed=0)
    result.final.validity, result.final.mode_coverage

Your own Hugging Face checkpoints: ``load_pair``, ``read_prompts``, ``compare_hf`` (``kl_core.lm.hf_distill``;
metrics ``kl_core.lm.open_eval``); more than one process: ``kl_core.lm.parallel`` and ``python -m kl_core.lm``.

Every model is a ``torch.nn.Module`` mapping ids (B, T) to next-token logits (B, T, V); sampling is
tokenizer-free (``generate``). Teacher = p, student = q, argument order (teacher, student).
"""

from kl_core.lm.distill import (
    DEMO_METHODS,
    DEMO_STEPS,
    DistillResult,
    Progress,
    StopTraining,
    compare,
    default_student,
    distill,
    resolve_device,
)
from kl_core.lm.evaluation import Evaluation, evaluate
from kl_core.lm.hf import ModelPair, PromptGroups, load_pair, read_prompts
from kl_core.lm.hf_distill import HFDistillResult, compare_hf, distill_hf, verdict
from kl_core.lm.languages import DEFAULT_LANGUAGE, LANGUAGES, Language, Mode, Prompt, get_language
from kl_core.lm.methods import METHODS, Method, Objective, method_loss, resolve_method
from kl_core.lm.model import LMConfig, TinyLM
from kl_core.lm.open_eval import OpenEvaluation, evaluate_open
from kl_core.lm.sampling import HFCausalLM, answer_logits, generate, sequence_log_prob, wrap_hf
from kl_core.lm.teacher import EPSILON, THRESHOLD, SyntheticTeacher

__all__ = [
    "Language",
    "Mode",
    "Prompt",
    "LANGUAGES",
    "DEFAULT_LANGUAGE",
    "get_language",
    "SyntheticTeacher",
    "EPSILON",
    "THRESHOLD",
    "LMConfig",
    "TinyLM",
    "generate",
    "answer_logits",
    "sequence_log_prob",
    "HFCausalLM",
    "wrap_hf",
    "METHODS",
    "Method",
    "Objective",
    "method_loss",
    "resolve_method",
    "Evaluation",
    "evaluate",
    "distill",
    "compare",
    "default_student",
    "resolve_device",
    "DistillResult",
    "Progress",
    "StopTraining",
    "DEMO_METHODS",
    "DEMO_STEPS",
    "ModelPair",
    "PromptGroups",
    "load_pair",
    "read_prompts",
    "HFDistillResult",
    "distill_hf",
    "compare_hf",
    "verdict",
    "OpenEvaluation",
    "evaluate_open",
]
