#!/usr/bin/python3
"""Writes PyTorch fixtures for the cdnv2 PyTorch bridge from the official CondenseNetV2 code.

usage: /usr/bin/python3 scripts/pytorch-fixtures.py --official DIR --out DIR [--configs tiny,a,b,c] [--inputs N]
       /usr/bin/python3 scripts/pytorch-fixtures.py --official DIR --eval-export FILE.pth --config a --inputs-file X.f32

DIR is a checkout of github:jianghaojun/CondenseNetV2 (its model/ and utils/ are imported from there, nothing of
it is copied here). Per configuration X it builds the official training-form model twice with random weights
(the "EMA" and the plain weights of a train.py checkpoint), random batch-norm statistics and random *final* masks,
and writes into OUT:
  X-train.pth.tar         zip format: {'epoch', 'arch', 'state_dict' ('module.' keys), 'state_dict_ema', 'args' ...}
  X-train-legacy.pth.tar  the same dict in the legacy format (_use_new_zipfile_serialization=False)
  X-converted.pth.tar     zip format {'state_dict': converted EMA model}, as convert_and_eval.py saves it
  X-converted-legacy.pth  legacy format, the converted state dict bare (an OrderedDict, no wrapping dict)
  X-inputs.f32            N inputs, float32, NCHW, already normalised
  X-logits.json           eval-mode logits of the EMA model, the plain model and the converted EMA model
The second form loads an exported state dict (cdnv2 export-pytorch) into the official model with strict=True and
prints its eval-mode logits on the inputs as JSON.
"""
import argparse
import copy
import json
import os
import sys

import torch

CONFIGS = {
    # Official values (model/condensenetv2.py).
    'a': dict(stages='1-1-4-6-8', growth='8-8-16-32-64', factor=8, groups=(8, 8, 8), fc=828, dataset='imagenet'),
    'b': dict(stages='2-4-6-8-6', growth='6-12-24-48-96', factor=6, groups=(6, 6, 6), fc=1024, dataset='imagenet'),
    'c': dict(stages='4-6-8-10-8', growth='8-16-32-64-128', factor=8, groups=(8, 8, 8), fc=1024, dataset='imagenet'),
    # cdnv2-tiny (base/arch/configs.ts): the CIFAR branch (stride-1 stem, 8x8 pool), group_1x1 4, group_3x3 2,
    # group_trans 4, condense_factor 4, trans_factor 4 (the official deploy model needs C = group_1x1, S = group_trans).
    'tiny': dict(stages='1-2-1', growth='4-8-8', condense=4, trans=4, groups=(4, 2, 4), fc=16, dataset='cifar10',
                 classes=10, hs=1, se=2, last_se=4),
}


def official_args(name):
    c = CONFIGS[name]
    a = argparse.Namespace()
    a.dataset = c['dataset']
    a.num_classes = c.get('classes', 1000)
    a.stages = list(map(int, c['stages'].split('-')))
    a.growth = list(map(int, c['growth'].split('-')))
    a.condense_factor = c.get('condense', c.get('factor'))
    a.trans_factor = c.get('trans', c.get('factor'))
    a.group_1x1, a.group_3x3, a.group_trans = c['groups']
    a.bottleneck = 4
    a.last_se_reduction = c.get('last_se', 16)
    a.HS_start_block = c.get('hs', 2)
    a.SE_start_block = c.get('se', 3)
    a.fc_channel = c['fc']
    return a


def build(name, converted=False):
    from model.condensenetv2 import CondenseNetV2
    from model.converted_condensenetv2 import ConvertedCondenseNetV2
    import io
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()):  # the official constructors print the block widths
        return (ConvertedCondenseNetV2 if converted else CondenseNetV2)(official_args(name))


def randomise(model, gen):
    """Random weights, BN statistics and final masks (every LGC group keeps in/C inputs, every SFR input group
    keeps out/S outputs), with the stage and count buffers of a finished condensation."""
    from utils import LGC, SFR
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (1.0 / m.weight[0].numel()) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        for m in model.modules():
            if isinstance(m, LGC):
                cin, cout, G, C = m.in_channels, m.out_channels, m.groups, m.condense_factor
                m._mask.zero_()
                for g in range(G):
                    keep = torch.randperm(cin, generator=gen)[: cin // C]
                    rows = m._mask[g::G]  # the outputs of group g (a view)
                    rows[:, keep] = 1
                m._stage.fill_(C - 1)
                m._count.fill_((C - 1) * (cin // C))
                m.conv.weight.mul_((C) ** 0.5)  # keep activations O(1) with in/C inputs per output
            elif isinstance(m, SFR):
                cin, cout, G, S = m.in_channels, m.out_channels, m.groups, m.condense_factor
                m._mask.zero_()
                for g in range(G):
                    keep = torch.randperm(cout, generator=gen)[: cout // S]
                    cols = m._mask[:, g::G]  # the inputs of group g (a view)
                    cols[keep] = 1
                m._stage.fill_(S - 1)
                m._count.fill_((S - 1) * (cout // S))
                m.conv.weight.mul_(0.3)  # every SFR adds into old features: keep the sum from growing with depth
        # Spread the logits so that the inputs get different top-1 classes (the biases would decide otherwise).
        model.classifier.weight.mul_(20.0)


def logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).tolist()


def save(obj, path, legacy):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)


def write_config(name, out, n_inputs, seed):
    from utils import convert_model
    gen = torch.Generator().manual_seed(seed)
    args = official_args(name)
    ema, plain = build(name), build(name)
    randomise(ema, gen)
    randomise(plain, gen)
    size = 32 if args.dataset == 'cifar10' else 224
    # Inputs with different scales and per-channel offsets: random features pool to nearly the same head vector
    # for inputs that differ only in their noise, and different top-1 classes make the top-1 check meaningful.
    x = torch.randn(n_inputs, 3, size, size, generator=gen)
    x = x * (0.5 + torch.rand(n_inputs, 1, 1, 1, generator=gen) * 2) + torch.randn(n_inputs, 3, 1, 1, generator=gen)

    converted = copy.deepcopy(ema)
    import io
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()):
        convert_model(converted, args)
    # The released converted files load into ConvertedCondenseNetV2: check that this one does too.
    deploy = build(name, converted=True)
    deploy.load_state_dict(converted.state_dict(), strict=True)

    train_ckpt = {
        'epoch': 349, 'arch': 'cdnv2_' + name, 'version': 2, 'metric': 12.5, 'args': args,
        'state_dict': {'module.' + k: v for k, v in plain.state_dict().items()},
        'optimizer': {'state': {}, 'param_groups': [{'lr': 0.0, 'momentum': 0.9, 'nesterov': True, 'params': [0, 1]}]},
        'state_dict_ema': ema.state_dict(),
    }
    save(train_ckpt, os.path.join(out, f'{name}-train.pth.tar'), legacy=False)
    save(train_ckpt, os.path.join(out, f'{name}-train-legacy.pth.tar'), legacy=True)
    save({'state_dict': converted.state_dict()}, os.path.join(out, f'{name}-converted.pth.tar'), legacy=False)
    save(converted.state_dict(), os.path.join(out, f'{name}-converted-legacy.pth'), legacy=True)
    x.numpy().astype('<f4').tofile(os.path.join(out, f'{name}-inputs.f32'))
    result = {
        'config': name, 'torch': torch.__version__, 'inputs': n_inputs, 'shape': [3, size, size],
        'ema': logits(ema, x), 'plain': logits(plain, x), 'converted': logits(deploy, x),
    }
    with open(os.path.join(out, f'{name}-logits.json'), 'w') as f:
        json.dump(result, f)
    return result


def eval_export(name, path, inputs_file, n_inputs):
    """Loads a state dict written by `cdnv2 export-pytorch` into the official model, strictly."""
    model = build(name)
    state = torch.load(path, map_location='cpu')
    model.load_state_dict(state, strict=True)
    args = official_args(name)
    size = 32 if args.dataset == 'cifar10' else 224
    x = torch.from_numpy(__import__('numpy').fromfile(inputs_file, dtype='<f4').reshape(n_inputs, 3, size, size))
    print(json.dumps({'logits': logits(model, x)}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--official', required=True, help='checkout of github:jianghaojun/CondenseNetV2')
    p.add_argument('--out', help='output directory')
    p.add_argument('--configs', default='tiny', help='comma-separated: tiny,a,b,c')
    p.add_argument('--inputs', type=int, default=2)
    p.add_argument('--seed', type=int, default=23)
    p.add_argument('--eval-export', help='state dict written by cdnv2 export-pytorch')
    p.add_argument('--config', help='configuration of --eval-export')
    p.add_argument('--inputs-file', help='float32 NCHW inputs for --eval-export')
    a = p.parse_args()
    sys.path.insert(0, os.path.abspath(a.official))
    torch.set_num_threads(1)
    if a.eval_export:
        eval_export(a.config, a.eval_export, a.inputs_file, a.inputs)
        return
    os.makedirs(a.out, exist_ok=True)
    for name in a.configs.split(','):
        r = write_config(name, a.out, a.inputs, a.seed)
        print(f'{name}: top-1 ema {[max(range(len(l)), key=l.__getitem__) for l in r["ema"]]}')


if __name__ == '__main__':
    main()
