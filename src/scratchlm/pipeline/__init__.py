"""`scratchlm speedrun`: every stage of the pipeline into one run directory, then report.md.

Stages, in order (each writes `stages/<name>.json` when it finishes; a rerun skips finished stages,
and an interrupted pretraining or post-training stage resumes from its latest checkpoint):

    corpus     synthetic stories (offline) or a downloaded corpus -> corpus/{train,valid}.txt
    tokenizer  byte-level BPE on the training text                -> tokenizer/
    tokenize   both splits                                         -> tokens/{train,valid}.npy
    pretrain   the TransformerLM                                   -> pretrain/
    task       the default task's SFT and preference data          -> task/
    sft        supervised fine-tuning on the task's conversations  -> sft/
    pairs      (dpo_pairs=self) preference pairs from the SFT model's own answers -> pairs/
    dpo, grpo  preference tuning and/or reinforcement on the reward -> dpo/, grpo/
    evaluate   constraint-satisfaction rate after each stage, samples before and after
    report     report.md and <stage>-loss.png (always rewritten)

Modules: `presets` (the settings, `make_config`), `stages` (one function per stage), `results`
(what each stage returns, and its marker file), `runner` (`speedrun`: markers, skips, the config
guard) and `report` (report.md).
"""

from scratchlm.pipeline.presets import PRESETS, SpeedrunConfig, make_config  # noqa: F401
from scratchlm.pipeline.runner import speedrun  # noqa: F401
