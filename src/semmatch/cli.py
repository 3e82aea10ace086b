"""The `semmatch` command line: thin wrappers that parse options and call library functions."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from semmatch import __version__
from semmatch.errors import ConfigError, SemmatchError

logger = logging.getLogger("semmatch")


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["auto", "ids", "text"], default="auto",
                        help="input format: GAIIC token IDs, raw text, or detected from the file (default: auto)")
    parser.add_argument("--encoding", default="utf-8",
                        help="text encoding of input files, a Python codec name (default: utf-8; "
                             "gbk or gb18030 for files saved on Chinese Windows)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser = argparse.ArgumentParser(prog="semmatch", description="Short-text semantic matching with a two-tower model.")
    parser.add_argument("--version", action="version", version=f"semmatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", parents=[common], help="train a model on labeled pairs")
    train.add_argument("--train", nargs="+", metavar="FILE", help="labeled pair files, merged in order")
    train.add_argument("--valid", metavar="FILE", help="labeled validation file (default: split off the training data)")
    train.add_argument("--valid-fraction", type=float, help="fraction of pairs held out for validation (default 0.2)")
    train.add_argument("--split", choices=["random", "query"], help="random: stratified (default); query: no query on both sides")
    train.add_argument("--output-dir", metavar="DIR", help="directory for models, logs, plots and metrics")
    train.add_argument("--resume", metavar="DIR",
                       help="continue an interrupted run from its last completed epoch (its --output-dir); "
                            "only --epochs may change")
    _add_recipe_options(train)

    cv = commands.add_parser("cv", parents=[common],
                             help="cross-validate on query-disjoint folds: AUC mean and spread, out-of-fold predictions")
    cv.add_argument("--train", nargs="+", required=True, metavar="FILE", help="labeled pair files, merged in order")
    cv.add_argument("--folds", type=int, default=5, help="number of folds; every pair is validated once (default 5)")
    cv.add_argument("--output-dir", required=True, metavar="DIR",
                    help="directory for fold_N/ runs, oof_predictions.csv and cv_metrics.json")
    _add_recipe_options(cv)

    predict = commands.add_parser("predict", parents=[common], help="write one match probability per input pair")
    predict.add_argument("--model", required=True, nargs="+", metavar="DIR",
                         help="model directory (e.g. OUTPUT_DIR/best); several directories average their "
                              "probabilities, such as the fold models of semmatch cv")
    predict.add_argument("--input", required=True, metavar="FILE", help="pair file with 2 or 3 columns")
    predict.add_argument("--output", required=True, metavar="FILE", help="result file: one probability per line")
    predict.add_argument("--zip", metavar="FILE", help="also write a zip holding the result file alone (Tianchi submission)")
    predict.add_argument("--on-invalid", choices=["error", "nan"], default="error",
                         help="invalid input lines stop the run (error, default) or get 'nan' in their place")
    predict.add_argument("--pad-to", type=int, help="pad every query to this many positions")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    predict.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32 (default) or bf16 autocast")
    predict.add_argument("--batch-size", type=int, default=1024, help="queries per encoder call (default 1024)")
    predict.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                         help="run the PyTorch model (default) or an ONNX export from semmatch export in ONNX Runtime")
    _add_input_options(predict)

    evaluate = commands.add_parser("evaluate", parents=[common], help="score a labeled file and print metrics as JSON")
    evaluate.add_argument("--model", required=True, nargs="+", metavar="DIR",
                          help="model directory; several directories average their probabilities")
    evaluate.add_argument("--input", required=True, metavar="FILE", help="labeled pair file")
    evaluate.add_argument("--output-dir", metavar="DIR", help="also write metrics.json, roc_curve.png and predictions.tsv")
    evaluate.add_argument("--pad-to", type=int, help="pad every query to this many positions")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32 (default) or bf16 autocast")
    _add_input_options(evaluate)
    _add_serving_commands(commands, common)
    return parser


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """Model and training options shared by train and cv; unset flags keep the preset's or TOML file's value."""
    parser.add_argument("--preset", help="named starting configuration: reference (the default recipe), best (the "
                                         "most accurate in docs/accuracy.md, an interaction model) or best_two_tower "
                                         "(the most accurate with query vectors); --config and flags override it")
    parser.add_argument("--config", metavar="FILE.toml", help="TOML file with [model] and [train] tables; flags override it")
    parser.add_argument("--seed", type=int, help="random seed for the split, initialization and batch order (default 42)")
    parser.add_argument("--epochs", type=int, help="maximum number of epochs (default 50)")
    parser.add_argument("--batch-size", type=int, help="pairs per optimizer step (default 512)")
    parser.add_argument("--max-len", type=int, help="maximum tokens per query; longer queries are truncated (default 128)")
    parser.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    parser.add_argument("--patience", type=int, help="epochs without better validation AUC before stopping (default 10)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="fp32 (default) or bf16 autocast")
    parser.add_argument("--pad-to", type=int, help="pad every query to this many positions (the reference used 128)")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice)")
    parser.add_argument("--fusion", help="comma-separated pair features: u,v,abs_diff,product,cosine (default u,v,abs_diff)")

    parser.add_argument("--architecture", choices=["two_tower", "interaction"],
                        help="two_tower (default): one vector per query, for encode, search and ONNX export; "
                             "interaction: cross attention between the two queries, pairs scored jointly")
    parser.add_argument("--symmetric", action=argparse.BooleanOptionalAction, default=None,
                        help="score both query orders and average them, so score(a, b) == score(b, a)")
    parser.add_argument("--embedding-dropout", type=float, help="dropout on the token embeddings (default 0)")
    parser.add_argument("--optimizer", choices=["adam", "adamw"],
                        help="adam with the reference's l2 penalty (default) or adamw with --weight-decay")
    parser.add_argument("--weight-decay", type=float, help="adamw: decoupled weight decay of matrices (default 0)")
    parser.add_argument("--label-smoothing", type=float, help="train towards y * (1 - s) + s / 2 (default 0)")
    parser.add_argument("--clip-grad-norm", type=float, help="clip the gradient norm to this value (default 0: off)")
    parser.add_argument("--ema-decay", type=float,
                        help="validate and save an exponential moving average of the weights (default 0: off)")
    parser.add_argument("--augment-transitive", type=float, metavar="RATIO",
                        help="add training pairs implied by the labeled ones, at most RATIO times the labeled count "
                             "of each class (default 0: none)")

    parser.add_argument("--mlm-epochs", type=int,
                        help="before pair training, pretrain the encoder for this many epochs to predict masked "
                             "tokens of the training queries (default 0: off)")
    parser.add_argument("--mlm-mask-fraction", type=float, help="share of tokens masked in pretraining (default 0.15)")
    parser.add_argument("--drop-duplicates", action="store_true", default=None, help="drop repeated pairs, logging the count")
    parser.add_argument("--skip-invalid", action="store_true", help="skip invalid lines and write them to OUTPUT_DIR/rejects.tsv")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_input_options(parser)


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="run the PyTorch model (default) or an ONNX export from semmatch export in ONNX Runtime")
    parser.add_argument("--device", default="auto", help="torch backend: auto, cpu, cuda or cuda:N (default auto)")


def _add_serving_commands(commands, common: argparse.ArgumentParser) -> None:
    """Add the index, search, export and serve subcommands."""
    index = commands.add_parser("index", parents=[common], help="encode known queries into a searchable FAISS index")
    index.add_argument("--model", required=True, metavar="DIR", help="model directory (or ONNX export with --backend onnx)")
    index.add_argument("--queries", required=True, metavar="FILE", help="one query per line, or a pair file (its distinct queries)")
    index.add_argument("--output", required=True, metavar="DIR", help="bank directory to write (index.faiss, queries.txt, ...)")
    index.add_argument("--layout", choices=["auto", "lines", "pairs"], default="auto",
                       help="lines: one query per line; pairs: a pair file; auto (default): a pair file if the first line has a tab")
    index.add_argument("--index-type", choices=["flat", "hnsw", "ivf"], default="flat",
                       help="flat: exact search (default); hnsw or ivf: approximate search for millions of queries")
    index.add_argument("--hnsw-m", type=int, default=32, help="hnsw: graph links per vector (default 32)")
    index.add_argument("--ef-search", type=int, default=128, help="hnsw: search breadth, raised to --candidates when smaller (default 128)")
    index.add_argument("--nlist", type=int, help="ivf: number of cells (default about 4 * sqrt(queries))")
    index.add_argument("--nprobe", type=int, default=16, help="ivf: cells searched per query (default 16)")
    index.add_argument("--batch-size", type=int, default=1024, help="queries per encoder call (default 1024)")
    index.add_argument("--encoding", default="utf-8", help="text encoding of the queries file (default: utf-8)")
    _add_backend_options(index)

    search = commands.add_parser("search", parents=[common], help="find the bank queries that best match new queries")
    search.add_argument("--index", required=True, metavar="DIR", help="bank directory written by semmatch index")
    search.add_argument("--model", required=True, metavar="DIR", help="the model the bank was built with")
    search.add_argument("--query", action="append", metavar="TEXT", help="a query to search for (repeat for several)")
    search.add_argument("--queries", metavar="FILE", help="a file of queries to search for, one per line")
    search.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    search.add_argument("--candidates", type=int,
                        help="bank queries retrieved by vector similarity and rescored by the head (default max(k, 50))")
    search.add_argument("--no-rerank", action="store_true",
                        help="return the k most similar bank queries by cosine, without reordering them by the head")
    search.add_argument("--output", metavar="FILE", help="write JSON lines here instead of standard output")
    search.add_argument("--encoding", default="utf-8", help="text encoding of the queries file (default: utf-8)")
    _add_backend_options(search)

    export = commands.add_parser("export", parents=[common], help="export a model's encoder and head as ONNX graphs")
    export.add_argument("--model", required=True, metavar="DIR", help="model directory")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default onnx)")
    export.add_argument("--output", required=True, metavar="DIR", help="directory for encoder.onnx, head.onnx and onnx.json")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset, 17 or later (default 18)")
    export.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo",
                        help="PyTorch's torch.export-based exporter (default) or the older TorchScript one")

    serve = commands.add_parser("serve", parents=[common], help="serve match, encode and search over HTTP")
    serve.add_argument("--model", required=True, metavar="DIR", help="model directory (or ONNX export with --backend onnx)")
    serve.add_argument("--index", metavar="DIR", help="bank directory from semmatch index, for POST /v1/search")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="torch backend: fp32 (default) or bf16 autocast")
    serve.add_argument("--max-pairs", type=int, default=1000, help="pairs per /v1/match request (default 1000)")
    serve.add_argument("--max-queries", type=int, default=1000, help="queries per /v1/encode request (default 1000)")
    serve.add_argument("--max-query-length", type=int, default=512,
                       help="characters of a text query, or IDs of an ID query (default 512)")
    serve.add_argument("--max-body-bytes", type=int, default=2**20, help="request body size in bytes (default 1048576)")
    serve.add_argument("--max-k", type=int, default=100, help="results per /v1/search request (default 100)")
    serve.add_argument("--candidates", type=int, default=50, help="bank queries rescored by the head per search (default 50)")
    serve.add_argument("--batch-wait-ms", type=float, default=2.0,
                       help="milliseconds a lone request waits for others to share its model call (default 2)")
    serve.add_argument("--max-batch-queries", type=int, default=4096, help="queries per model call (default 4096)")
    serve.add_argument("--threads", type=int,
                       help="CPU threads for the model and the FAISS search (default: each library's choice, "
                            "usually one per core)")
    _add_backend_options(serve)


def setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _train_configs(args: argparse.Namespace):
    """Merge defaults, the preset, the TOML file and command-line flags, in that order, into
    (ModelConfig, TrainConfig)."""
    from semmatch.config import ModelConfig, TrainConfig, build_config, load_toml_config, preset_values

    model_values, train_values = preset_values(args.preset) if args.preset else ({}, {})
    if args.config:
        toml_model, toml_train = load_toml_config(args.config)
        model_values.update(toml_model)
        train_values.update(toml_train)
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "patience": args.patience,
             "device": args.device, "seed": args.seed, "valid_fraction": getattr(args, "valid_fraction", None),
             "split": getattr(args, "split", None), "pad_to": args.pad_to, "precision": args.precision,
             "num_threads": args.threads, "drop_duplicates": args.drop_duplicates, "optimizer": args.optimizer,
             "weight_decay": args.weight_decay, "label_smoothing": args.label_smoothing,
             "clip_grad_norm": args.clip_grad_norm, "ema_decay": args.ema_decay,
             "augment_transitive": args.augment_transitive, "mlm_epochs": args.mlm_epochs,
             "mlm_mask_fraction": args.mlm_mask_fraction}
    train_values.update({key: value for key, value in flags.items() if value is not None})
    model_flags = {"architecture": args.architecture, "max_len": args.max_len, "symmetric": args.symmetric,
                   "embedding_dropout": args.embedding_dropout}
    model_values.update({key: value for key, value in model_flags.items() if value is not None})
    if args.fusion:
        model_values["fusion"] = [name.strip() for name in args.fusion.split(",") if name.strip()]
    source = args.config or (f"preset {args.preset}" if args.preset else "command line")
    return build_config(ModelConfig, model_values, source), build_config(TrainConfig, train_values, source)


# Options that --resume may not change: the run continues with the settings in its config.json.
FIXED_ON_RESUME = ("train", "valid", "valid_fraction", "split", "output_dir", "preset", "config", "seed", "batch_size",
                   "max_len", "lr", "patience", "device", "precision", "pad_to", "architecture", "fusion", "symmetric",
                   "embedding_dropout", "optimizer", "weight_decay", "label_smoothing", "clip_grad_norm", "ema_decay",
                   "augment_transitive", "mlm_epochs", "mlm_mask_fraction", "drop_duplicates")


def _resumed_run(args: argparse.Namespace):
    """Read a run directory's effective config for --resume; only --epochs may change."""
    from semmatch.config import ModelConfig, TrainConfig, build_config
    from semmatch.fileio import sha256_file

    changed = [name for name in FIXED_ON_RESUME if getattr(args, name, None) not in (None, False)]
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed)
        raise ConfigError(f"--resume continues a run with its saved settings; only --epochs may change, not {flags}")

    config_path = Path(args.resume) / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"cannot resume: {config_path} not found; --resume takes the --output-dir of an earlier run")
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    if args.epochs is not None:
        saved["train"]["epochs"] = args.epochs
    for path, digest in saved.get("inputs", {}).items():
        if not Path(path).is_file() or sha256_file(path) != digest:
            raise ConfigError(f"cannot resume: input file {path} is missing or changed since the run started")
    model_config = build_config(ModelConfig, saved["model"], str(config_path))
    train_config = build_config(TrainConfig, saved["train"], str(config_path))
    return model_config, train_config, saved


@contextlib.contextmanager
def _log_file(path: Path | None):
    """Copy the log to `path` while the block runs (nothing when None)."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    except SemmatchError as error:
        # main() reports the error on stderr after this handler is gone; the file gets it here.
        handler.handle(logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "%s", (error,), None))
        raise
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def run_train(args: argparse.Namespace) -> int:
    from semmatch.distributed import is_main_process
    from semmatch.fileio import check_writable_directory, sha256_file
    from semmatch.train import fit, prepare_data

    if args.resume:
        model_config, train_config, saved = _resumed_run(args)
        output_dir = Path(args.resume)
        files, valid, input_format = saved["train_files"], saved["valid_file"], saved["input_format"]
        on_invalid, encoding = saved.get("on_invalid", "error"), saved.get("encoding", "utf-8")
    else:
        if not args.train or not args.output_dir:
            raise ConfigError("train needs --train FILE... and --output-dir DIR (or --resume DIR)")
        model_config, train_config = _train_configs(args)
        output_dir = Path(args.output_dir)
        files, valid, input_format = args.train, args.valid, args.format
        on_invalid, encoding = ("skip" if args.skip_invalid else "error"), args.encoding
    check_writable_directory(output_dir)

    with _log_file(output_dir / "train.log" if is_main_process() else None):
        inputs = {path: sha256_file(path) for path in [*files, *([valid] if valid else [])] if Path(path).is_file()}
        data = prepare_data(files, valid, train_config, model_config.max_len, input_format, on_invalid, encoding,
                            output_dir / "rejects.tsv")
        run_info = {"train_files": files, "valid_file": valid, "on_invalid": on_invalid, "encoding": encoding,
                    "preset": saved.get("preset") if args.resume else args.preset, "inputs": inputs}
        result = fit(data, model_config, train_config, output_dir, progress=not args.no_progress,
                     run_info=run_info, resume=bool(args.resume))
    if result.metrics:
        summary = ("best_val_auc", "best_epoch", "epochs_run", "train_pairs_per_second")
        print(json.dumps({key: result.metrics[key] for key in summary}))
    return 0


def run_cv(args: argparse.Namespace) -> int:
    from semmatch.crossval import cross_validate
    from semmatch.fileio import check_writable_directory, sha256_file

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("cv trains its folds one after another in one process; run it without torchrun")
    if args.folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got --folds {args.folds}")
    model_config, train_config = _train_configs(args)
    output_dir = Path(args.output_dir)
    check_writable_directory(output_dir)
    inputs = {path: sha256_file(path) for path in args.train if Path(path).is_file()}
    run_info = {"train_files": args.train, "folds": args.folds, "preset": args.preset, "inputs": inputs}
    with _log_file(output_dir / "cv.log"):
        metrics = cross_validate(args.train, model_config, train_config, output_dir, args.folds, args.format,
                                 "skip" if args.skip_invalid else "error", args.encoding,
                                 progress=not args.no_progress, run_info=run_info)
    summary = ("folds", "mean_auc", "std_auc", "out_of_fold_auc")
    print(json.dumps({key: metrics[key] for key in summary}))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from semmatch.onnx_export import load_backend
    from semmatch.predict import predict_file

    matchers = [load_backend(path, args.backend, args.device, args.precision) for path in args.model]
    for matcher in matchers:
        matcher.batch_size = args.batch_size
    counts = predict_file(matchers, args.input, args.output, args.format, args.on_invalid, args.encoding,
                          args.pad_to, zip_path=args.zip)
    print(json.dumps({"output": args.output, **counts}))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from semmatch.matcher import load_model
    from semmatch.predict import evaluate_file

    matchers = [load_model(path, args.device, args.precision) for path in args.model]
    metrics = evaluate_file(matchers, args.input, args.format, args.encoding, args.output_dir, args.pad_to)
    print(json.dumps(metrics, indent=2))
    return 0


def run_index(args: argparse.Namespace) -> int:
    from semmatch.bank import IndexSettings, QueryBank, read_bank_queries
    from semmatch.matcher import require_vectors
    from semmatch.onnx_export import load_backend

    settings = IndexSettings(args.index_type, hnsw_m=args.hnsw_m, ef_search=args.ef_search,
                             nlist=args.nlist, nprobe=args.nprobe)
    matcher = load_backend(args.model, args.backend, args.device)
    require_vectors(matcher, "semmatch index")
    matcher.batch_size = args.batch_size
    queries = read_bank_queries(args.queries, matcher.input_format, args.layout, args.encoding)
    bank = QueryBank.build(matcher, queries, settings, source=args.queries)
    bank.save(args.output)
    print(json.dumps({"output": args.output, "queries": len(bank), "index_type": args.index_type}))
    return 0


def run_search(args: argparse.Namespace) -> int:
    from semmatch.bank import QueryBank, read_query_lines
    from semmatch.errors import InputError
    from semmatch.fileio import atomic_open
    from semmatch.matcher import require_vectors
    from semmatch.onnx_export import load_backend

    if bool(args.query) == bool(args.queries):
        raise InputError("give the queries to search for with --query TEXT (repeatable) or --queries FILE, not both")
    matcher = load_backend(args.model, args.backend, args.device)
    require_vectors(matcher, "semmatch search")
    bank = QueryBank.load(args.index, matcher)
    queries = args.query or read_query_lines(args.queries, matcher.input_format, args.encoding)
    results = bank.search(matcher, queries, args.k, args.candidates, rerank=not args.no_rerank)
    lines = [json.dumps({"query": query, "results": [hit.to_dict() for hit in hits]}, ensure_ascii=False)
             for query, hits in zip(queries, results)]
    if args.output:
        with atomic_open(args.output) as handle:
            handle.write("".join(line + "\n" for line in lines))
        logger.info("wrote results for %d queries to %s", len(lines), args.output)
    else:
        print("\n".join(lines))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from semmatch.onnx_export import export_onnx

    document = export_onnx(args.model, args.output, args.opset, args.exporter)
    print(json.dumps({"output": args.output, "exporter": document["exporter"], "opset": document["opset"],
                      "max_abs_difference": document["max_abs_difference"]}))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from semmatch.bank import QueryBank
    from semmatch.errors import ConfigError
    from semmatch.matcher import require_vectors
    from semmatch.onnx_export import load_backend
    from semmatch.serving import ServeLimits, serve

    limits = ServeLimits(max_pairs=args.max_pairs, max_queries=args.max_queries, max_query_length=args.max_query_length,
                         max_body_bytes=args.max_body_bytes, max_k=args.max_k, search_candidates=args.candidates,
                         batch_wait_ms=args.batch_wait_ms, max_batch_queries=args.max_batch_queries)
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    matcher = load_backend(args.model, args.backend, args.device, args.precision, threads=args.threads)
    if args.index:
        require_vectors(matcher, "serving a query bank (--index)")
    bank = QueryBank.load(args.index, matcher, threads=args.threads) if args.index else None
    serve(matcher, bank, args.host, args.port, limits)
    return 0


COMMANDS = {"train": run_train, "cv": run_cv, "predict": run_predict, "evaluate": run_evaluate,
            "index": run_index, "search": run_search, "export": run_export, "serve": run_serve}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.quiet)
    try:
        return COMMANDS[args.command](args)
    except SemmatchError as error:
        logger.error("%s", error)
        return error.exit_status
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
