"""Generated demo data: `crm-platform demo load --size N [--seed S]`.

A pack ships a declarative profile, `demo_profile.yaml` (schema:
crm_platform/metadata/schemas/demo_profile.schema.json), saying per entity how many rows to make
(per unit of size, per row of another entity, or a pool) and how each field is drawn. The
platform checks it against the Registry (errors with file:line:column, nothing written), then
writes the rows in batches with executemany, one transaction per batch, computing what a save
would (defaults, workflow on-enter actions, formulas, auto-numbers, history), and recomputes
roll-ups over other entities afterwards. Same seed, size and starting database: same data.

Modules: model (the compiled profile), reader (files and layering), expressions, compile_fields
and compile_plans (checking and compiling), generators (field values), rows (a row and its
scope), row_rules (the rules on a row), numbering (auto-numbers), builder (making rows),
owners, writer (the database side), recompute (roll-ups), runner (a run).
"""

from crm_platform.engine.demo_data.compile_plans import load_profile
from crm_platform.engine.demo_data.model import DemoDataError, Profile
from crm_platform.engine.demo_data.runner import (
    MAX_SIZE,
    DemoDataExists,
    DemoResult,
    Progress,
    ProgressEvent,
    generate,
    generated_runs,
)

__all__ = [
    "MAX_SIZE",
    "DemoDataError",
    "DemoDataExists",
    "DemoResult",
    "Profile",
    "Progress",
    "ProgressEvent",
    "generate",
    "generated_runs",
    "load_profile",
]
