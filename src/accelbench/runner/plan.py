"""What a run will do, decided in the parent before any cell runs: inputs checked, cells probed,
the reference placed first, scaling baselines before the cells they scale."""

from __future__ import annotations

from dataclasses import dataclass, replace

from accelbench.config.job import Role
from accelbench.config.specs import CellSpec, RunConfig, expand, reference_cell_on
from accelbench.errors import UserError

# workloads that run the run's checkpoint and are held to the reference's logits and F1
CHECKPOINT_WORKLOADS = ("infer", "serve")  # workloads that run the run's checkpoint


@dataclass(frozen=True)
class Planned:
    cell: CellSpec
    role: Role = Role.CELL
    repeat: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return self.cell.cell_id, self.repeat


def validate_inputs(config: RunConfig) -> None:
    """Fail fast, in the parent, on a dataset, model or checkpoint that cannot be loaded."""
    from accelbench.data.corpus import load_corpus
    from accelbench.data.models import checkpoint_labels, load_tokenizer, resolve_model

    if config.ceilings_file:
        from accelbench.measure.ceilings import load_file

        load_file(config.ceilings_file)
    if config.checkpoint:  # what infer and serve cells run, with its own tokenizer
        load_tokenizer(resolve_model(config.checkpoint))
    if not config.checkpoint or "train" in config.workloads:  # --model is what trains
        load_tokenizer(resolve_model(config.model, config.tokenizer))
    if config.synthetic:
        return
    corpus = load_corpus(config.dataset, config.seed)
    if config.checkpoint:
        missing = sorted(set(corpus.labels) - set(checkpoint_labels(config.checkpoint)))
        if missing:
            raise UserError(
                f"checkpoint {config.checkpoint} has no labels for "
                f"{', '.join(missing[:5])} of {corpus.name}: fine-tune on this corpus"
            )


def probe(cell: CellSpec) -> tuple[bool, str]:
    """Whether the cell's runtime can run it here, and why not."""
    from accelbench.backends import get_backend
    from accelbench.backends.compile import serving_refusal

    backend = get_backend(cell.runtime)
    cap = backend.probe(cell.workload, cell.device, cell.precision)
    if cap.ok and cell.nproc > 1 and not getattr(backend, "data_parallel", False):
        return False, f"runtime {cell.runtime} has no data-parallel (multi-process) training"
    if cap.ok and cell.workload == "serve" and not getattr(backend, "serves", False):
        return False, f"runtime {cell.runtime} has no serving path (any batch size from 1)"
    if cap.ok and serving_refusal(cell):
        return False, serving_refusal(cell)
    return cap.ok, cap.reason


def require_runnable(config: RunConfig) -> None:
    """Stop before any work when not one requested cell can run here (the reference fine-tune
    a run adds is not requested: it would train for nothing)."""
    cells = expand(config)
    refusals = []
    for cell in cells:
        ok, reason = probe(cell)
        if ok:
            return
        refusals.append(reason)
    why = "; ".join(dict.fromkeys(refusals))
    raise UserError(
        f"none of the {len(cells)} requested cells can run here ({why}): "
        "see `accelbench run --plan` and `accelbench list --runnable`"
    )


def reference_cell(config: RunConfig) -> CellSpec | None:
    """fp32 eager on the first requested device that can run it; None if none can."""
    for device in config.devices:
        cell = reference_cell_on(config, device)
        if probe(cell)[0]:
            return cell
    return None


def needs_reference(cell: CellSpec) -> bool:
    """Whether the cell runs the checkpoint the run's reference cell trains."""
    return cell.workload in CHECKPOINT_WORKLOADS and cell.checkpoint == "run-reference"


def plan_cells(config: RunConfig) -> list[Planned]:
    """The matrix in run order, led by the reference cell when the run needs one: the fp32
    eager train cell (its checkpoint is what inference runs), or with --checkpoint the fp32
    eager infer cell over that checkpoint. It is a cell of the matrix, moved first, or added."""
    cells = [Planned(c) for c in expand(config)]
    ref = None if config.synthetic else reference_cell(config)
    in_matrix = ref is not None and any(p.cell.cell_id == ref.cell_id for p in cells)
    checked = any(w in config.workloads for w in CHECKPOINT_WORKLOADS)
    if ref is not None and (in_matrix or checked):
        rest = [p for p in cells if p.cell.cell_id != ref.cell_id]
        cells = [Planned(ref, Role.REFERENCE), *rest]
    return interleaved(with_scaling_baselines(cells), config.repeats)


def interleaved(cells: list[Planned], repeats: int) -> list[Planned]:
    """Every cell `repeats` times, round after round (A B C A B C, not A A B B C C), so slow
    drift of the machine spreads over all cells; the reference leads every round."""
    return [replace(p, repeat=r) for r in range(repeats) for p in cells]


def with_scaling_baselines(cells: list[Planned]) -> list[Planned]:
    """Every cell of N > 1 processes preceded by its 1-process cell, the scaling baseline
    (moved up from later in the matrix, or added)."""
    roles = {p.cell.cell_id: p.role for p in cells}
    out: dict[str, Planned] = {}
    for planned in cells:
        cell = planned.cell
        for c in ([replace(cell, nproc=1)] if cell.nproc > 1 else []) + [cell]:
            out.setdefault(c.cell_id, Planned(c, roles.get(c.cell_id, Role.CELL)))
    return list(out.values())


def plan_table(config: RunConfig) -> str:
    """`accelbench run --plan`: the cells in run order, each with its role and whether it can
    run here (and why not), without running anything. The inputs are checked as a run checks
    them (UserError)."""
    validate_inputs(config)
    plan = plan_cells(config)
    lines, runnable = [], 0
    width = max(len(p.cell.label) for p in plan)
    for i, p in enumerate(plan, start=1):
        ok, reason = probe(p.cell)
        runnable += ok
        role = "reference" if p.role is Role.REFERENCE else ""
        repeat = f"r{p.repeat}  " if config.repeats > 1 else ""
        state = "runs here" if ok else f"unsupported: {reason}"
        lines.append(
            f"{i:>3}  {p.cell.label.ljust(width)}  {p.cell.cell_id}  {repeat}{role:9}  {state}"
        )
    head = f"{len(plan)} cells, {runnable} can run here, {len(plan) - runnable} unsupported"
    return "\n".join([head, *lines])
