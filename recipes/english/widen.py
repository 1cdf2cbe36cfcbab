"""Widen a checkpoint's encoder BiLSTM without changing what it computes, to train on with more capacity.

    python recipes/english/widen.py runs/english_v4/best.pt runs/wide/init.pt --encoder-hidden 320
    speechcli train ... --encoder-hidden 320 --init-from runs/wide/init.pt

Every old weight keeps its value. The new units (and the new channels of the front end) get
PyTorch's usual random initialisation for what they read, and zero for every weight through
which the old units, the CTC head, the attention or the decoder would read them. So the widened
model gives the same outputs as the old one until training moves those zeros; the gradient
reaches them at once, since the new units' activations are not zero (Net2Net-style growth).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from speechcli.checkpoint import read_bundle, write_bundle
from speechcli.model import ModelConfig, Seq2Seq


def widened_state(state: dict, config: ModelConfig, hidden: int, seed: int = 0) -> tuple[dict, ModelConfig]:
    """The state dict and config of ``config``'s model with ``hidden`` encoder units per direction."""
    if config.frontend != "stack":
        raise ValueError("only the 'stack' front end can be widened")
    old = config.encoder_hidden
    if hidden <= old:
        raise ValueError(f"--encoder-hidden must be above the checkpoint's {old}")
    new_config = ModelConfig(**{**config.to_dict(), "encoder_hidden": hidden})
    torch.manual_seed(seed)
    fresh = Seq2Seq(new_config).state_dict()
    # encoder outputs are [forward units; backward units]: old unit j of each direction keeps index j in it
    outputs = torch.cat([torch.arange(old), hidden + torch.arange(old)])
    channels = torch.arange(2 * old)  # the front end's old channels come first
    units = torch.cat([gate * hidden + torch.arange(old) for gate in range(4)])  # old rows of the i, f, g, o blocks
    widened = {}
    for name, value in state.items():
        target = fresh[name]
        if target.shape == value.shape:
            widened[name] = value.clone()
            continue
        grown = target.clone().to(value.dtype)
        if name.startswith("encoder.conv."):
            grown[channels] = value
        elif name.startswith("encoder.lstm.bias"):
            grown[units] = value
        elif name.startswith("encoder.lstm.weight"):
            inputs = _lstm_inputs(name, channels, outputs, old)
            grown[units] = 0.0  # old units ignore the new ones
            grown[units[:, None], inputs[None, :]] = value
        elif name in ("ctc_head.weight", "decoder.attention.keys.weight"):
            grown.zero_()
            grown[:, outputs] = value
        elif name in ("decoder.cell.weight_ih", "decoder.output.0.weight"):
            # inputs [embedding or decoder hidden; attention context over the encoder outputs]
            leading = value.shape[1] - 2 * old
            grown.zero_()
            grown[:, :leading] = value[:, :leading]
            grown[:, leading + outputs] = value[:, leading:]
        else:
            raise ValueError(f"do not know how to widen {name} {tuple(value.shape)} → {tuple(target.shape)}")
        widened[name] = grown
    return widened, new_config


def _lstm_inputs(name: str, channels: torch.Tensor, outputs: torch.Tensor, old: int) -> torch.Tensor:
    """Where the old columns of an encoder LSTM weight go in the widened one."""
    if "weight_hh" in name:
        return torch.arange(old)
    layer = int(name.split("_l")[1].split("_")[0])
    return channels if layer == 0 else outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--encoder-hidden", type=int, required=True, help="new encoder BiLSTM width per direction")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new units' random weights")
    args = parser.parse_args()

    bundle = read_bundle(args.checkpoint)
    bundle.pop("training_state", None)
    bundle.pop("lm", None)
    state = {k: v.float() if v.is_floating_point() else v for k, v in bundle["state_dict"].items()}
    try:
        bundle["state_dict"], config = widened_state(state, ModelConfig.from_dict(bundle["model_config"]),
                                                     args.encoder_hidden, args.seed)
    except ValueError as error:
        sys.exit(f"error: {error}")
    bundle["model_config"] = config.to_dict()
    bundle["info"]["widened_from"] = {"checkpoint": str(args.checkpoint), "encoder_hidden": args.encoder_hidden}
    write_bundle(args.out, bundle)
    print(f"wrote {args.out}: encoder {config.encoder_hidden} per direction", file=sys.stderr)


if __name__ == "__main__":
    main()
