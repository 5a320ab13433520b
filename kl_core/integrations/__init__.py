"""Optional bridges from kl_core's token-level losses to training libraries (each imports its library lazily).

- ``kl_core.integrations.trl``: ``KLGKDTrainer`` and ``KLDistillationTrainer``, TRL's trainers with any kl_core
  divergence as the loss (needs ``pip install trl``).

Importing ``kl_core`` or this package never imports a training library.
"""

__all__: list[str] = []
