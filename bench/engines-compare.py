#!/usr/bin/env python3
"""Same WASI command, two engines: wasmtime (Cranelift, Python embedding) against V8 (Node, scripts/wasi-run.mjs).

  python3 bench/engines-compare.py [--rounds 3] [--runs 50] [--wasm build/cdnv2.wasm ...] model.cnv2 ...

Each round runs every (model, engine, build) once with `bench MODEL --runs N`, round-robin, so both engines see
the same machine load; the table gives the median over rounds of each run's median (ms). wasmtime modules are
compiled once (compile time printed apart). `--wasm` names builds to compare (default: build/cdnv2.wasm and
build/cdnv2-relaxed.wasm); a build whose name contains "relaxed" gets relaxed SIMD in both engines.
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

    def bench(self, model, runs):
        d = os.path.dirname(os.path.abspath(model))
        with tempfile.NamedTemporaryFile('r', suffix='.txt') as out:
            wasi = wasmtime.WasiConfig()
            wasi.argv = ['cdnv2.wasm', 'bench', '/m/' + os.path.basename(model), '--runs', str(runs)]
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
            return median_ms(open(out.name).read())


def node_bench(wasm, model, runs):
    d = os.path.dirname(os.path.abspath(model))
    r = subprocess.run(['node', os.path.join(ROOT, 'scripts/wasi-run.mjs'), f'--dir={d}::/m', wasm, 'bench',
                        '/m/' + os.path.basename(model), '--runs', str(runs)], capture_output=True, text=True)
    # Node has been seen to crash (SIGSEGV) at exit after the module returned; the printed figures stand.
    if r.returncode != 0 and 'median ms' not in r.stdout:
        raise RuntimeError(f'node exit {r.returncode}: {r.stdout}{r.stderr}')
    return median_ms(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('models', nargs='+')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--runs', type=int, default=50)
    ap.add_argument('--wasm', action='append')
    ap.add_argument('--engines', default='v8,wasmtime')
    ap.add_argument('--stat', default='median', choices=['median', 'p10'],
                    help='which figure of each run to take (p10 is steadier on a loaded machine)')
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
    times = {}
    for r in range(a.rounds):
        for model in a.models:
            for w in wasms:
                for e in engines:
                    ms = wt[w].bench(model, a.runs) if e == 'wasmtime' else node_bench(w, model, a.runs)
                    times.setdefault((model, e, w), []).append(ms)
        print(f'round {r + 1} done', file=sys.stderr)
    names = [os.path.basename(w) for w in wasms]
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
