"""The `semmatch` command line: thin wrappers that parse options and call library functions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from semmatch import __version__
from semmatch.errors import SemmatchError

logger = logging.getLogger("semmatch")


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["auto", "ids", "text"], default="auto",
                        help="input format: GAIIC token IDs, raw text, or detected from the file (default: auto)")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of input files (default: utf-8; e.g. gbk)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser = argparse.ArgumentParser(prog="semmatch", description="Short-text semantic matching with a two-tower model.")
    parser.add_argument("--version", action="version", version=f"semmatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", parents=[common], help="train a model on labeled pairs")
    train.add_argument("--train", nargs="+", required=True, metavar="FILE", help="labeled pair files, merged in order")
    train.add_argument("--valid", metavar="FILE", help="labeled validation file (default: split off the training data)")
    train.add_argument("--valid-fraction", type=float, help="fraction of pairs held out for validation (default 0.2)")
    train.add_argument("--split", choices=["random", "query"], help="random: stratified (default); query: no query on both sides")
    train.add_argument("--seed", type=int, help="random seed for the split, initialization and batch order (default 42)")
    train.add_argument("--output-dir", required=True, metavar="DIR", help="directory for models, logs, plots and metrics")
    train.add_argument("--config", metavar="FILE.toml", help="TOML file with [model] and [train] tables; flags override it")
    train.add_argument("--epochs", type=int, help="maximum number of epochs (default 50)")
    train.add_argument("--batch-size", type=int, help="pairs per optimizer step (default 512)")
    train.add_argument("--max-len", type=int, help="maximum tokens per query; longer queries are truncated (default 128)")
    train.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    train.add_argument("--patience", type=int, help="epochs without better validation AUC before stopping (default 10)")
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    train.add_argument("--precision", choices=["fp32", "bf16"], help="fp32 (default) or bf16 autocast")
    train.add_argument("--pad-to", type=int, help="pad every query to this many positions (the reference used 128)")
    train.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice)")
    train.add_argument("--fusion", help="comma-separated pair features: u,v,abs_diff,product,cosine (default u,v,abs_diff)")
    train.add_argument("--drop-duplicates", action="store_true", default=None, help="drop repeated pairs, logging the count")
    train.add_argument("--skip-invalid", action="store_true", help="skip invalid lines and write them to OUTPUT_DIR/rejects.tsv")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_input_options(train)

    predict = commands.add_parser("predict", parents=[common], help="write one match probability per input pair")
    predict.add_argument("--model", required=True, metavar="DIR", help="model directory (e.g. OUTPUT_DIR/best)")
    predict.add_argument("--input", required=True, metavar="FILE", help="pair file with 2 or 3 columns")
    predict.add_argument("--output", required=True, metavar="FILE", help="result file: one probability per line")
    predict.add_argument("--zip", metavar="FILE", help="also write a zip holding the result file alone (Tianchi submission)")
    predict.add_argument("--on-invalid", choices=["error", "nan"], default="error",
                         help="invalid input lines stop the run (error, default) or get 'nan' in their place")
    predict.add_argument("--pad-to", type=int, help="pad every query to this many positions")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    predict.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32 (default) or bf16 autocast")
    predict.add_argument("--batch-size", type=int, default=1024, help="queries per encoder call (default 1024)")
    _add_input_options(predict)

    evaluate = commands.add_parser("evaluate", parents=[common], help="score a labeled file and print metrics as JSON")
    evaluate.add_argument("--model", required=True, metavar="DIR", help="model directory")
    evaluate.add_argument("--input", required=True, metavar="FILE", help="labeled pair file")
    evaluate.add_argument("--output-dir", metavar="DIR", help="also write metrics.json, roc_curve.png and predictions.tsv")
    evaluate.add_argument("--pad-to", type=int, help="pad every query to this many positions")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32 (default) or bf16 autocast")
    _add_input_options(evaluate)
    return parser


def setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    from semmatch.config import ModelConfig, TrainConfig, build_config, load_toml_config
    from semmatch.train import fit, prepare_data

    model_values, train_values = load_toml_config(args.config) if args.config else ({}, {})
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "patience": args.patience,
             "device": args.device, "seed": args.seed, "valid_fraction": args.valid_fraction, "split": args.split,
             "pad_to": args.pad_to, "precision": args.precision, "num_threads": args.threads,
             "drop_duplicates": args.drop_duplicates}
    train_values.update({key: value for key, value in flags.items() if value is not None})
    if args.max_len is not None:
        model_values["max_len"] = args.max_len
    if args.fusion:
        model_values["fusion"] = [name.strip() for name in args.fusion.split(",") if name.strip()]
    source = args.config or "command line"
    model_config = build_config(ModelConfig, model_values, source)
    train_config = build_config(TrainConfig, train_values, source)

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(output_dir / "train.log", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(file_handler)
    try:
        data = prepare_data(args.train, args.valid, train_config, model_config.max_len, args.format,
                            "skip" if args.skip_invalid else "error", args.encoding, output_dir / "rejects.tsv")
        run_info = {"train_files": args.train, "valid_file": args.valid}
        result = fit(data, model_config, train_config, output_dir, progress=not args.no_progress, run_info=run_info)
    finally:
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()
    print(json.dumps({key: result.metrics[key] for key in ("best_val_auc", "best_epoch", "epochs_run", "train_pairs_per_second")}))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from semmatch.matcher import load_model
    from semmatch.predict import predict_file

    matcher = load_model(args.model, args.device, args.precision)
    matcher.batch_size = args.batch_size
    counts = predict_file(matcher, args.input, args.output, args.format, args.on_invalid, args.encoding,
                          args.pad_to, zip_path=args.zip)
    print(json.dumps({"output": args.output, **counts}))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from semmatch.matcher import load_model
    from semmatch.predict import evaluate_file

    matcher = load_model(args.model, args.device, args.precision)
    metrics = evaluate_file(matcher, args.input, args.format, args.encoding, args.output_dir, args.pad_to)
    print(json.dumps(metrics, indent=2))
    return 0


COMMANDS = {"train": run_train, "predict": run_predict, "evaluate": run_evaluate}


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
