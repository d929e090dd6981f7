"""The commands: build, inspect, run, compare, hil (`neurocompile COMMAND --help`). Bad input of
any kind ends with one line on stderr and exit code 2; exit 3 is a bug."""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from .. import __version__
from ..errors import NeurocompileError
from ..ir.nodes import ENCODINGS, FAILURE_MODES, PRODUCT_FORMS, STARTS, IFPopulation
from ..partition.place import STRIPE_CUTS
from ..passes.products import SITES
from ..backends import DEVICES
from .hil import STANDINS
from .runs import BACKENDS, PRECISIONS

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="Compile converted spiking networks (ONNX) for Loihi-style neuromorphic hardware.")
# Pipes and CI logs get wide tables instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
STATE = {"debug": False}


def _choices(name: str, values) -> type[Enum]:
    """An Enum of the allowed values, so that typer checks them and lists them in --help."""
    return Enum(name, {v: v for v in values}, type=str)


Encoding = _choices("Encoding", ENCODINGS)
ProductForm = _choices("ProductForm", PRODUCT_FORMS)
ProductSite = _choices("ProductSite", SITES)
StripeCuts = _choices("StripeCuts", STRIPE_CUTS)
Start = _choices("Start", STARTS)
FailureMode = _choices("FailureMode", FAILURE_MODES)
Backend = _choices("Backend", BACKENDS)
Precision = _choices("Precision", PRECISIONS)
Standin = _choices("Standin", STANDINS)
Device = _choices("Device", DEVICES)
SEED_MAX = 2**32 - 1


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")) -> None:
    STATE["debug"] = debug


@app.command()
def build(
    model: Path = typer.Argument(..., help="ONNX model of a converted network."),
    target: str = typer.Option("loihi2-sim", "--target", "-t", help="Target name (loihi2-sim, loihi2, loihi1-sim, ...) or a .toml path."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Artifact directory (default: MODEL.ncx next to the model)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Default seed of the artifact's random streams (rate-coded input)."),
    encoding: Encoding = typer.Option("current", "--encoding", help="Input encoding: current (the same analog input every step) or rate (Bernoulli spikes)."),
    calibrate: Optional[Path] = typer.Option(None, "--calibrate", help="Sample inputs [batch, ...] (.npy): thresholds of ReLU populations and the input range."),
    percentile: float = typer.Option(99.9, "--percentile", min=0.0, max=100.0,
                                     help="Calibrated threshold: this percentile of a population's positive activations."),
    input_range: Optional[float] = typer.Option(None, "--input-range", help="Largest |input| expected (default: from --calibrate data, else 4)."),
    v_init: float = typer.Option(0.5, "--v-init", min=0.0, max=1.0, help="Initial membrane potential, in thresholds (below 1)."),
    product: ProductForm = typer.Option("coincidence", "--product", help="Spike products: coincidence (A(t) @ B(t), the MST paper's) or telescoping "
                                        "(sums to the product of the operands' rates; docs/semantics.md)."),
    mask_ratio: Optional[str] = typer.Option(None, "--mask-ratio", help="Override the model's random spike masking ratios: R for every mask, "
                                             "or GROUP=R,... for the masks whose name contains GROUP (e.g. attn=0.75,mlp=0.5)."),
    failure_mode: FailureMode = typer.Option("spike", "--failure-mode", help="What a mask drops: spike (one draw per presynaptic spike, shared by "
                                     "its targets: the MST's semantics) or synapse (one draw per synaptic event)."),
    start: Start = typer.Option("aligned", "--start", help="The step each population takes input from: aligned (when its last input path "
                                "arrives, so no population integrates part of its input during the pipeline's fill) or zero (every "
                                "population from step 0; docs/semantics.md, \"Start\")."),
    relay_sums: Optional[int] = typer.Option(None, "--relay-sums", min=2, help="Make every sum of N or more populations (the residual "
                                             "stream) a population of relay neurons that its readers read once, at a step of latency each."),
    products_on: ProductSite = typer.Option("auto", "--products-on", help="Where spike products of two spike tensors run: processors "
                                            "(the chips' or the host's), cores (coincidence neurons and a relay of their sums, two steps "
                                            "of latency each; docs/semantics.md), or auto: where they take the smaller share of a chip "
                                            "(its cores, or its processors' time over a step). `inspect` lists each product's place, "
                                            "why and costs."),
    stripe_cuts: StripeCuts = typer.Option("small", "--stripe-cuts", help="On more than one chip, which core slices stop where the "
                                           "input region (stripe) changes: none, those of populations whose pieces between changes take at "
                                           "most a fifth of a core (small), or all: fewer spike messages between chips (a window's Q, K and "
                                           "V beside the tokens that feed them), for more cores where the pieces are large."),
) -> None:
    """Compile MODEL.onnx into an artifact directory for the target."""
    from ..compiler import BuildOptions, build as build_artifact

    options = BuildOptions(target=target, seed=seed, encoding=encoding.value, input_range=input_range,
                           calibrate=str(calibrate) if calibrate else None, percentile=percentile, v_init=v_init,
                           product_form=product.value, mask_ratio=mask_ratio, failure_mode=failure_mode.value,
                           start=start.value, relay_sums=relay_sums, products_on=products_on.value, stripe_cuts=stripe_cuts.value)
    with err.status("building") as status:
        path, report = build_artifact(model, output, options, step=lambda name: status.update(f"building: {name}"))
    for line in report["warnings"]:
        err.print(f"warning: {line}", markup=False, highlight=False)
    r = report["resources"]
    out.print(f"built {path}: {report['populations']} populations, {report['neurons']} neurons, {report['synapses']} synapses, "
              f"{r['cores']} cores (lower bound {r['lower_bound_cores']}), latency {report['latency_steps']} steps")


def _load_run_inputs(artifact: Path, input: Path, samples: Optional[int]):
    from ..compiler.artifact import load_artifact
    from ..data import load_input

    art = load_artifact(artifact)
    x = load_input(input, art.net.meta["input_shape"])
    if samples is not None:
        x = x[:samples]
    return art, x


def _run_with_progress(art, x, steps, backend, seed, record=False, precision="fixed", readout_start="0", per_core=False, device="cpu",
                       batch_size=None):
    from .runs import run_backend

    with _progress() as bar:
        total = steps if backend == "reference" else x.shape[0]
        task = bar.add_task(f"{backend}: {'steps' if backend == 'reference' else 'samples'}", total=total)
        return run_backend(art, x, steps, backend, seed, record=record, precision=precision, progress=lambda n: bar.update(task, completed=n),
                           readout_start=readout_start, per_core=per_core, device=device, batch_size=batch_size)


DEVICE_HELP = "Where the simulator runs: cpu, or cuda (a GPU; refused where none is visible). Results are identical."
BATCH_HELP = "Samples the simulator runs at once (default: as many as fit half the device's free memory). Results do not depend on it."


PER_CORE_HELP = "Lava: emit one process per core slice of the artifact's placement (default: one per population)."
READOUT_START_HELP = ("First step the readout sums: a step number, or 'latency', the steps the first input needs to cross the "
                      "pipeline (report.json's latency_steps; 0 for --backend reference). The run lasts this many steps plus --steps.")
STEPS_HELP = "Time steps the readout sums, after --readout-start (the run lasts --readout-start + T steps)."


WORKERS_HELP = "Evaluate on a local Ray cluster of N worker processes (pip install 'neurocompile[ray]'). Results are identical to one process."
RAY_ADDRESS_HELP = "Evaluate on the existing Ray cluster at ADDR (host:port of its head, or 'auto'); see the README."


def _eval_progress() -> Progress:
    """Samples done, samples per second and the time left."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    _SamplesPerSecond(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=True)


class _SamplesPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} samples/s" if task.speed else "")


def _evaluate_with_progress(art, inputs, config, executor, result, resume, what: str):
    from ..evaluation.stream import evaluate

    with _eval_progress() as bar:
        task = bar.add_task(f"{what}: samples", total=len(inputs))
        return evaluate(art, inputs, config, executor, result, resume, lambda n: bar.update(task, completed=n))


def _executor(workers: Optional[int], ray_address: Optional[str]):
    if workers is None and ray_address is None:
        return None
    if workers is not None and ray_address is not None:
        raise NeurocompileError("--workers starts a local Ray cluster and --ray-address joins an existing one: give one of them")
    from ..evaluation.distributed import RayExecutor

    return RayExecutor(workers, ray_address)


@app.command()
def run(
    artifact: Path = typer.Argument(..., help="Artifact directory (*.ncx)."),
    input: Path = typer.Option(..., "--input", "-i", help="Inputs, float32 [N, ...input shape]: an .npy file (memory-mapped, read a chunk at a "
                               "time) or a directory of .npy shards (taken in name order)."),
    steps: int = typer.Option(..., "--steps", "-T", min=1, help=STEPS_HELP),
    backend: Backend = typer.Option("sim", "--backend", "-b", help="sim (bit-accurate simulator), lava, or reference (float, no delay between layers: the MST paper's evaluation)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=SEED_MAX, help="Seed of the random streams (default: the artifact's)."),
    samples: Optional[int] = typer.Option(None, "--samples", "-n", min=1, help="Use only the first N samples."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Integer labels [N] (.npy): report accuracy with its 95 % confidence interval."),
    precision: Precision = typer.Option("fixed", "--precision", help="fixed (bit-accurate) or float (Lava's floating_pt models)."),
    readout_start: str = typer.Option("latency", "--readout-start", help=READOUT_START_HELP),
    per_core: bool = typer.Option(False, "--per-core", help=PER_CORE_HELP),
    device: Device = typer.Option("cpu", "--device", help=DEVICE_HELP),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=BATCH_HELP + " Also the samples per chunk written to --out's partial results."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    ann: bool = typer.Option(True, "--ann/--no-ann", help="Also run the artifact's float network (the ANN) on every sample: its accuracy and "
                             "the SNN's agreement with it."),
    result: Optional[Path] = typer.Option(None, "--out", help="Write the per-sample result (.npz): output, prediction, spikes/<population>, "
                                          "events/<edge>, ... Chunks are kept in OUT.partial/ until it is written."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run whose partial results are next to --out."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write summary.json and plots (spike rates against the ANN's, a raster) into this directory."),
    raster: Optional[str] = typer.Option(None, "--raster", help="Populations (comma-separated) in the report's raster of sample 0 "
                                         "(default: four IF populations spread over the depth)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Run an artifact on inputs with the simulator or Lava, in chunks, optionally on Ray."""
    from ..compiler.artifact import load_artifact
    from ..data import InputSet, check_output_file, load_labels
    from ..evaluation.metrics import percent, scores
    from ..evaluation.records import as_run_result
    from ..evaluation.stream import RunConfig
    from ..partition.energy import run_energy
    from .runs import readout_start_step, summary

    backend, precision = backend.value, precision.value
    art = load_artifact(artifact)
    inputs = InputSet(input, art.net.meta["input_shape"], samples)
    seed = art.manifest["options"].get("seed", 0) if seed is None else seed
    y = load_labels(labels, len(inputs)) if labels else None
    if result:
        check_output_file(result, ".npz")
    elif resume:
        raise NeurocompileError("--resume continues the partial results kept next to --out R.npz: name the result file")
    if report:
        _check_report_dir(report)
    elif raster:
        raise NeurocompileError("--raster chooses what the report draws: add --report DIR")
    raster_names = [n.strip() for n in raster.split(",") if n.strip()] if raster else None
    spiking = {p.name for p in art.net.populations() if isinstance(p, IFPopulation)}
    unknown = [n for n in raster_names or [] if n not in spiking]
    if unknown:
        raise NeurocompileError(f"--raster: no IF population named {', '.join(repr(n) for n in unknown)} (the populations that spike: "
                                f"`neurocompile inspect {artifact}`)")
    if per_core and backend != "lava":
        raise NeurocompileError(f"--per-core shapes the Lava emission; --backend {backend} has none")
    if (device.value != "cpu" or batch_size is not None) and backend != "sim":
        raise NeurocompileError(f"--device and --batch-size place the simulator; --backend {backend} runs elsewhere")
    start = readout_start_step(art, readout_start, backend)
    config = RunConfig(backend, start + steps, seed, start, precision, per_core, ann, device.value, batch_size)
    rec = _evaluate_with_progress(art, inputs, config, _executor(workers, ray_address), result, resume, backend)
    name = backend if precision == "fixed" else f"{backend}-float"
    res = as_run_result(rec, name, start + steps, art.net.meta["output_shape"])
    energy = run_energy(art.net, art.target, art.placement, res) if backend != "reference" else None
    s = summary(res, seed, start, energy)
    s["scores"] = scores(rec, y)
    if "accuracy" in s["scores"]:
        s["accuracy"] = s["scores"]["accuracy"]["value"]
    if report:
        from ..reports.run import write_run_report

        write_run_report(report, art, inputs, config, s, rec, raster_names)
    if as_json:
        print(json.dumps(s))
        return
    from .views import energy_line, readout_line, run_table

    out.print(run_table(s))
    out.print(readout_line(s, art.net.latency() if backend != "reference" else 0))
    if energy is not None:
        out.print(energy_line(energy))
    sc = s["scores"]
    if "accuracy" in sc:
        out.print(f"accuracy: {percent(sc['accuracy'])}")
    if "ann_accuracy" in sc:
        out.print(f"ANN accuracy: {percent(sc['ann_accuracy'])}")
    if "ann_agreement" in sc:
        out.print(f"agreement with the ANN's predictions: {percent(sc['ann_agreement'])}")
    if report:
        out.print(f"report: {report}")
    if res.input_saturated:
        err.print(f"warning: {res.input_saturated} input values exceeded the payload range and were clipped (rebuild with a larger --input-range)")


def _check_report_dir(path: Path, what: str = "--report") -> None:
    """A directory a report may be written into (created if missing; not inside an artifact)."""
    if path.exists() and not path.is_dir():
        raise NeurocompileError(f"{what} {path} is a file; name a directory")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise NeurocompileError(f"{what} {path}: directory {parent} does not exist")
    for folder in (path.resolve(), *path.resolve().parents):
        if (folder / "manifest.json").is_file():
            raise NeurocompileError(f"{what} {path} is inside the artifact {folder}; write it next to the artifact")


@app.command()
def sweep(
    model: Path = typer.Argument(..., help="ONNX model of a converted network."),
    input: Path = typer.Option(..., "--input", "-i", help="Inputs [N, ...input shape]: an .npy file or a directory of .npy shards."),
    labels: Path = typer.Option(..., "--labels", help="Integer labels [N] (.npy)."),
    steps: str = typer.Option(..., "--steps", "-T", help="Readout steps T after the pipeline fill, comma-separated: 16,32,64."),
    mask_ratio: Optional[str] = typer.Option(None, "--mask-ratio", help="Random spike masking ratios, comma-separated: 0,0.5,0.75 "
                                             "(one build each; default: the model's own ratios)."),
    seeds: str = typer.Option("0", "--seeds", help="Seeds of the random streams: a range 0-4, a list 0,3,7, or both."),
    target: str = typer.Option("loihi2-sim", "--target", "-t", help="Target name or a .toml path."),
    samples: Optional[int] = typer.Option(None, "--samples", "-n", min=1, help="Use only the first N samples."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=BATCH_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
    report: Path = typer.Option(Path("sweep"), "--report", help="Directory for sweep.json, sweep.csv, the plots and the artifacts built."),
    as_json: bool = typer.Option(False, "--json", help="Print sweep.json's content on stdout."),
) -> None:
    """Build MODEL once per mask ratio and evaluate every (mask ratio, T, seed) on the test set:
    a table, sweep.csv, sweep.json and plots."""
    from ..compiler import BuildOptions
    from ..data import InputSet, load_labels
    from ..evaluation.sweep import Grid, build_variant, parse_numbers, parse_seeds, run_sweep
    from ..reports.sweep import write_sweep_report
    from .views import sweep_table

    grid = Grid(parse_numbers(steps, "--steps", int), parse_numbers(mask_ratio, "--mask-ratio", float) if mask_ratio else [None], parse_seeds(seeds))
    grid.check()
    _check_report_dir(report)
    arts, inputs, y = {}, None, None
    with err.status("building") as status:
        for ratio in grid.mask_ratios:
            status.update(f"building {model.name} with {'its own mask ratios' if ratio is None else f'mask ratio {ratio:g}'} into {report / 'artifacts'}")
            arts[ratio] = build_variant(model, report, ratio, BuildOptions(target=target))
            if inputs is None:  # checked against the first build, before the others take their time
                inputs = InputSet(input, arts[ratio].net.meta["input_shape"], samples)
                y = load_labels(labels, len(inputs))
    executor = _executor(workers, ray_address)
    started = False
    if executor is not None:
        from ..evaluation.distributed import connect

        _, started = connect(workers, ray_address)  # one cluster for every cell
    try:
        with _eval_progress() as bar:
            task = bar.add_task("sweep: samples", total=grid.cells * len(inputs))
            cells_done = []

            def progress(name: str, n: float) -> None:
                if n == 0 and name not in cells_done:
                    cells_done.append(name)
                bar.update(task, completed=(len(cells_done) - 1) * len(inputs) + n, description=f"sweep: {name}")

            result = run_sweep(arts, grid, inputs, y, executor, progress, batch_size=batch_size)
    finally:
        if started:
            import ray

            ray.shutdown()
    files = write_sweep_report(report, result)
    if as_json:
        print(json.dumps(result))
        return
    out.print(sweep_table(result))
    out.print(f"ANN accuracy {100 * result['ann_accuracy']:.2f} %; pipeline latency {result['latency']} steps; wrote " + ", ".join(str(f) for f in files))


@app.command()
def compare(
    artifact: Path = typer.Argument(..., help="Artifact directory (*.ncx)."),
    input: Path = typer.Option(..., "--input", "-i", help="Inputs, float32 [batch, ...input shape] (.npy)."),
    steps: int = typer.Option(..., "--steps", "-T", min=1, help=STEPS_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=SEED_MAX, help="Seed of the random streams (default: the artifact's)."),
    samples: Optional[int] = typer.Option(None, "--samples", "-n", min=1, help="Use only the first N samples."),
    readout_start: str = typer.Option("0", "--readout-start", help=READOUT_START_HELP + " Default 0: every spike of every step is compared."),
    per_core: bool = typer.Option(False, "--per-core", help=PER_CORE_HELP),
    device: Device = typer.Option("cpu", "--device", help=DEVICE_HELP),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=BATCH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON on stdout."),
) -> None:
    """Run the simulator and Lava; exit 0 when every population's spikes are identical, 1 with the
    first divergence (population, step, neuron) otherwise."""
    from .runs import compare_results, readout_start_step

    art, x = _load_run_inputs(artifact, input, samples)
    seed = art.manifest["options"].get("seed", 0) if seed is None else seed
    start = readout_start_step(art, readout_start, "sim")
    sim = _run_with_progress(art, x, start + steps, "sim", seed, record=True, readout_start=start, device=device.value, batch_size=batch_size)
    lava = _run_with_progress(art, x, start + steps, "lava", seed, record=True, readout_start=start, per_core=per_core)
    cmp = compare_results(sim, lava)
    if as_json:
        print(json.dumps(cmp))
    else:
        from .views import compare_table

        out.print(compare_table(cmp))
        if cmp["identical"]:
            out.print(f"identical: every population's spikes agree at every step ({x.shape[0]} samples x {steps} steps)")
        else:
            out.print(f"[red]first divergence:[/red] {cmp['divergence_text'] or 'readout accumulators differ'}")
    raise typer.Exit(0 if cmp["identical"] else 1)


@app.command()
def hil(
    artifact: Path = typer.Argument(..., help="Artifact directory (*.ncx)."),
    input: Path = typer.Option(..., "--input", "-i", help="Inputs, float32 [batch, ...input shape] (.npy)."),
    steps: int = typer.Option(..., "--steps", "-T", min=1, help="Time steps per sample."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=SEED_MAX, help="Seed of the random streams (default: the artifact's)."),
    samples: Optional[int] = typer.Option(None, "--samples", "-n", min=1, help="Use only the first N samples."),
    standin: Standin = typer.Option("loihi2-sim", "--standin", help="Where to run when no Loihi 2 is attached: loihi2-sim (Lava's Loihi2SimCfg)."),
    report: Path = typer.Option(Path("hil_report.json"), "--report", help="Where to write the JSON report (with provenance)."),
    device: Device = typer.Option("cpu", "--device", help=DEVICE_HELP),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=BATCH_HELP),
) -> None:
    """Hardware in the loop: run on Loihi 2 (or the stand-in) and check every population at every
    step against the simulator; exit 0 when identical, 1 with the first divergence."""
    from ..compiler.artifact import json_bytes, write_file_atomic
    from ..data import check_output_file
    from .hil import hil_check

    art, x = _load_run_inputs(artifact, input, samples)
    check_output_file(report, ".json", "--report")
    seed = art.manifest["options"].get("seed", 0) if seed is None else seed
    with _progress() as bar:
        task = bar.add_task("device: samples", total=x.shape[0])
        result = hil_check(art, x, steps, seed, standin.value, progress=lambda n: bar.update(task, completed=n), sim_device=device.value,
                           batch_size=batch_size)
    write_file_atomic(report, json_bytes(result))
    out.print(f"device: {result['device']}")
    if result["identical"]:
        out.print(f"identical: every population agrees with the simulator at every step ({x.shape[0]} samples x {steps} steps); report {report}")
    else:
        out.print(f"[red]first divergence:[/red] {result['divergence'] or 'readout or synaptic traffic differs'}; report {report}")
    raise typer.Exit(0 if result["identical"] else 1)


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="An artifact directory or an ONNX model."),
    target: str = typer.Option("loihi2-sim", "--target", "-t", help="Target for an ONNX model."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write pictures of the placement into this directory: cores per chip by "
                                        "population, spike messages between chips (PNG, numbers in placement_plots.json)."),
) -> None:
    """Print what was built: populations, synapse blocks, quantization error, placement."""
    from .views import artifact_summary, blocks_table, host_nodes_table, masks_table, placement_table, populations_table, products_table, quantization_table

    if path.is_dir() or path.suffix == ".ncx":
        from ..compiler.artifact import load_artifact

        art = load_artifact(path, recompute_placement=True)  # inspect vouches for the placement it shows
        out.print(artifact_summary(art))
        estimate = art.report.get("estimated_energy_per_step") or {}
        out.print(populations_table(art.net, art.report.get("quantization"), estimate.get("per_population"), art.placement))
        out.print(quantization_table(art.net, art.report.get("quantization") or {}))
        out.print(blocks_table(art.net))
        masks = masks_table(art.net)
        if masks is not None:
            out.print(masks)
        out.print(placement_table(art.placement))
        out.print(host_nodes_table(art.placement))
        if art.net.meta.get("products"):
            out.print(products_table(art.net.meta["products"]))
        if plot:
            from ..reports.placement import write_placement_plots

            _check_report_dir(plot, "--plot")
            out.print("wrote " + ", ".join(str(f) for f in write_placement_plots(plot, art)))
        return
    if plot:
        raise NeurocompileError("--plot draws an artifact's placement: build the model first")
    from ..frontend import onnx_to_ir

    net = onnx_to_ir(path)
    out.print(f"{path}: ONNX opset {net.meta['opset']}, input {net.meta['input_name']} {net.meta['input_shape']}, latency {net.latency()} steps (not quantized: `build` it for the target's figures)")
    out.print(populations_table(net))
    out.print(blocks_table(net))
    masks = masks_table(net)
    if masks is not None:
        out.print(masks)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"neurocompile {__version__}")


class Terminated(BaseException):
    """SIGTERM, raised where the program stands so that cleanup (Lava's processes) runs."""


MAIN_PID = os.getpid()


def _on_sigterm(signum, frame):
    if os.getpid() != MAIN_PID:  # a process Lava forked inherits the handler: end it quietly
        os._exit(128 + signum)
    raise Terminated


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer returns, not raises, an Exit's code (Ctrl-C: 130)
            if code == 130:
                err.print("interrupted")
            sys.exit(code)
    except NeurocompileError as e:
        if STATE["debug"]:
            traceback.print_exc()
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Terminated:
        err.print("terminated")
        sys.exit(128 + signal.SIGTERM)
    except typer.TyperException as e:  # the parser's own errors: unknown option, missing argument
        command = getattr(getattr(e, "ctx", None), "command_path", "neurocompile")
        err.print(f"error: {e.format_message()} (see `{command} --help`)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as e:  # the environment (permissions, missing folders, a full disk), not a bug
        if STATE["debug"]:
            traceback.print_exc()
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        err.print(f"error: {e.strerror or e}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except MemoryError:
        err.print("error: out of memory (use fewer --samples or a smaller --batch-size)")
        sys.exit(2)
    except Exception as e:  # a bug: say so in one line, with the way to see more
        if STATE["debug"]:
            traceback.print_exc()
        err.print(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(3)
