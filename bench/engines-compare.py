#!/usr/bin/env python3
"""Same WASI command, two engines: wasmtime (Cranelift, Python embedding) against V8 (Node, scripts/wasi-run.mjs).

  python3 bench/engines-compare.py [--rounds 3] [--runs 50] [--wasm build/cdnv2.wasm ...] model.cnv2 ...
  python3 bench/engines-compare.py --ops [--top 12] [--runs 20] model.cnv2 ...      # per op, side by side

Each round runs every (model, engine, build) once with `bench MODEL --runs N`, round-robin, so both engines see
the same machine load; the table gives the median over rounds of each run's median (ms). wasmtime modules are
compiled once (compile time printed apart). `--wasm` names builds to compare (default: build/cdnv2.wasm and
build/cdnv2-relaxed.wasm); a build whose name contains "relaxed" gets relaxed SIMD in both engines.

`--ops`: instead of whole runs, the command's per-op profile (`bench MODEL --profile`, each op timed alone, median
of --runs) per round; per op the median over rounds, for every (engine, build), and the ratio of the best wasmtime
build to the best V8 build. The --top ops with the largest wasmtime-V8 difference are listed, then the sums by op kind.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import wasmtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wasmtime_engine(relaxed):
    cfg = wasmtime.Config()
    cfg.wasm_simd = True
    cfg.wasm_relaxed_simd = relaxed
    return wasmtime.Engine(cfg)


STAT = 'median'


def median_ms(text):
    m = re.search(STAT + r' ms: ([0-9.]+)', text)
    if not m:
        raise RuntimeError('no median in output:\n' + text)
    return float(m.group(1))


class Wasmtime:
    def __init__(self, wasm):
        self.engine = wasmtime_engine('relaxed' in wasm)
        t0 = time.perf_counter()
        self.module = wasmtime.Module.from_file(self.engine, wasm)
        self.compile_ms = (time.perf_counter() - t0) * 1e3
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()

    def bench(self, model, runs, profile=False):
        d = os.path.dirname(os.path.abspath(model))
        with tempfile.NamedTemporaryFile('r', suffix='.txt') as out:
            wasi = wasmtime.WasiConfig()
            wasi.argv = ['cdnv2.wasm', 'bench', '/m/' + os.path.basename(model), '--runs', str(runs)] + (
                ['--profile'] if profile else [])
            wasi.preopen_dir(d, '/m')
            wasi.stdout_file = out.name
            wasi.inherit_stderr()
            store = wasmtime.Store(self.engine)
            store.set_wasi(wasi)
            inst = self.linker.instantiate(store, self.module)
            try:
                inst.exports(store)['_start'](store)
            except wasmtime.ExitTrap as e:
                if e.code != 0:
                    raise
            text = open(out.name).read()
            return op_times(text) if profile else median_ms(text)


def node_bench(wasm, model, runs, profile=False):
    d = os.path.dirname(os.path.abspath(model))
    r = subprocess.run(['node', os.path.join(ROOT, 'scripts/wasi-run.mjs'), f'--dir={d}::/m', wasm, 'bench',
                        '/m/' + os.path.basename(model), '--runs', str(runs)] + (['--profile'] if profile else []),
                       capture_output=True, text=True)
    # Node has been seen to crash (SIGSEGV) at exit after the module returned; the printed figures stand.
    if r.returncode != 0 and 'median ms' not in r.stdout:
        raise RuntimeError(f'node exit {r.returncode}: {r.stdout}{r.stderr}')
    return op_times(r.stdout) if profile else median_ms(r.stdout)


def build_names(wasms):
    """Column names: the file name, with its folder when two builds share a file name."""
    base = [os.path.basename(w) for w in wasms]
    return [os.path.join(os.path.basename(os.path.dirname(w)), b) if base.count(b) > 1 else b
            for w, b in zip(wasms, base)]


OP_LINE = re.compile(r'^\s*(\d+) (\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s')


def op_times(text):
    """{op index: (description, median ms)} from the command's --profile table."""
    ops = {}
    for line in text.splitlines():
        m = OP_LINE.match(line)
        if m:
            ops[int(m.group(1))] = (f'{m.group(2)} {m.group(3)}->{m.group(4)} g{m.group(5)}', float(m.group(7)))
    if not ops:
        raise RuntimeError('no per-op table in output:\n' + text)
    return ops


def ops_main(a, wasms, engines, wt):
    times = {}
    for r in range(a.rounds):
        for model in a.models:
            for w in wasms:
                for e in engines:
                    ops = wt[w].bench(model, a.runs, True) if e == 'wasmtime' else node_bench(w, model, a.runs, True)
                    times.setdefault((model, e, w), []).append(ops)
        print(f'round {r + 1} done', file=sys.stderr)
    names = build_names(wasms)
    cols = [(e, w, n) for e in engines for w, n in zip(wasms, names)]
    for model in a.models:
        desc = {i: d for i, (d, _) in times[(model, cols[0][0], cols[0][1])][0].items()}
        over_rounds = min if a.fastest else statistics.median
        med = {(e, w): {i: over_rounds(run[i][1] for run in times[(model, e, w)]) for i in desc}
               for e, w, _ in cols}
        best = {e: {i: min(med[(e, w)][i] for w in wasms) for i in desc} for e in engines}
        print(f"\n{os.path.basename(model)}: per op ms, {'fastest' if a.fastest else 'median'} over {a.rounds} rounds"
              f' of the median of --runs {a.runs}')
        print('| op | ' + ' | '.join(f'{e} {n}' for e, _, n in cols) + ' | wasmtime/V8 | difference ms |')
        print('|---|' + '---:|' * (len(cols) + 2))
        diff = lambda i: best['wasmtime'][i] - best['v8'][i]
        for i in sorted(desc, key=diff, reverse=True)[:a.top]:
            row = [f'{med[(e, w)][i]:.4f}' for e, w, _ in cols]
            print(f'| #{i} {desc[i]} | ' + ' | '.join(row) +
                  f" | {best['wasmtime'][i] / best['v8'][i]:.2f} | {diff(i):+.4f} |")
        kinds = sorted({d.split()[0] for d in desc.values()})
        print('| **sum by kind** | | | | | | |')
        for k in kinds + ['all']:
            ids = [i for i in desc if k == 'all' or desc[i].split()[0] == k]
            row = [f'{sum(med[(e, w)][i] for i in ids):.3f}' for e, w, _ in cols]
            bw, bv = sum(best['wasmtime'][i] for i in ids), sum(best['v8'][i] for i in ids)
            print(f'| {k} ({len(ids)} ops) | ' + ' | '.join(row) + f' | {bw / bv:.2f} | {bw - bv:+.3f} |')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('models', nargs='+')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--runs', type=int, default=50)
    ap.add_argument('--wasm', action='append')
    ap.add_argument('--engines', default='v8,wasmtime')
    ap.add_argument('--stat', default='median', choices=['median', 'p10'],
                    help='which figure of each run to take (p10 is steadier on a loaded machine)')
    ap.add_argument('--ops', action='store_true', help='per-op profiles side by side instead of whole runs')
    ap.add_argument('--fastest', action='store_true',
                    help="with --ops: per op the fastest round's median instead of the median over rounds (load)")
    ap.add_argument('--top', type=int, default=12, help='with --ops: how many ops to list (largest difference first)')
    a = ap.parse_args()
    global STAT
    STAT = a.stat
    wasms = a.wasm or [os.path.join(ROOT, 'build/cdnv2.wasm'), os.path.join(ROOT, 'build/cdnv2-relaxed.wasm')]
    engines = a.engines.split(',')
    wt = {}
    if 'wasmtime' in engines:
        for w in wasms:
            wt[w] = Wasmtime(w)
            print(f'wasmtime compile {os.path.basename(w)}: {wt[w].compile_ms:.0f} ms', file=sys.stderr)
    if a.ops:
        if sorted(engines) != ['v8', 'wasmtime']:
            ap.error('--ops compares the two engines: --engines v8,wasmtime')
        return ops_main(a, wasms, engines, wt)
    times = {}
    for r in range(a.rounds):
        for model in a.models:
            for w in wasms:
                for e in engines:
                    ms = wt[w].bench(model, a.runs) if e == 'wasmtime' else node_bench(w, model, a.runs)
                    times.setdefault((model, e, w), []).append(ms)
        print(f'round {r + 1} done', file=sys.stderr)
    names = build_names(wasms)
    cols = [(e, w, n) for e in engines for w, n in zip(wasms, names)]
    print('| model | ' + ' | '.join(f'{e} {n}' for e, _, n in cols) + ' | wasmtime/V8 (best of builds) |')
    print('|---|' + '---:|' * (len(cols) + 1))
    for model in a.models:
        med = {(e, w): statistics.median(times[(model, e, w)]) for e, w, _ in cols}
        row = [f'{med[(e, w)]:.2f}' for e, w, _ in cols]
        ratio = ''
        if len(engines) == 2:
            best = {e: min(med[(e, w)] for w in wasms) for e in engines}
            ratio = f"{best['wasmtime'] / best['v8']:.2f}"
        print(f'| {os.path.basename(model)} | ' + ' | '.join(row) + f' | {ratio} |')


if __name__ == '__main__':
    main()
