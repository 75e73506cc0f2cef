#!/usr/bin/env python3
"""Runs a WASI preview1 command under real wasmtime (the official Python embedding, `pip install wasmtime==49.0.0`:
the same engine and Cranelift as the `wasmtime` CLI), for machines without the CLI. Interface (stable; tests,
`cdnv2 bench` and the board docs use it):

  python3 scripts/wasmtime-run.py [run] [options] module.wasm|module.cwasm [args...]
      --dir=HOST[::GUEST]   preopen HOST as GUEST (default: the same path), READ-ONLY (files and directory);
                            repeatable. Like `wasmtime run --dir`, except that the CLI grants write access too.
      --relaxed-simd        enable the relaxed-SIMD proposal (needed by build/cdnv2-relaxed.wasm)
      --allow-precompiled   accept a module precompiled by `compile` below (as `wasmtime run --allow-precompiled`);
                            it must come from the same wasmtime version, flags and CPU kind
      --timings             after the run, print one line to stderr: `wasmtime-run: compile_ms=X run_ms=Y`
                            (compile_ms: compiling or deserialising the module; run_ms: instantiating and running it)
  python3 scripts/wasmtime-run.py compile [--relaxed-simd] [--target TRIPLE] [--timings] module.wasm -o module.cwasm
      compiles ahead of time (as `wasmtime compile`); --target cross-compiles, e.g. aarch64-unknown-linux-gnu;
      --timings prints `wasmtime-run: compile_ms=X` (compiling only) to stderr
  python3 scripts/wasmtime-run.py batch [--dir=...]... [--relaxed-simd] [--allow-precompiled] module JOBS.json
      runs the command once per entry of JOBS.json (a JSON list of guest argument lists), each in a fresh instance
      but compiling (or deserialising) the module once; prints one JSON line per run to stdout, in order:
      {"code": N, "stdout": "...", "stderr": "..."} with N what `run` would exit with (134 on a trap). The guests get
      no stdin. Exit status 0 once every run is reported, whatever the runs' own codes.
  python3 scripts/wasmtime-run.py --version      prints `wasmtime-py X.Y.Z`

The guest sees argv = [module path as given, args...], no environment, and inherits stdin, stdout and stderr.
Exit status: the module's own (`proc_exit`, 0 when `_start` returns); 134 on a wasm trap (as the CLI: 128+SIGABRT),
with `wasm trap: ...` on stderr; 2 for a usage error of this runner; 3 if the wasmtime package is missing.
"""
import json
import os
import shutil
import sys
import tempfile
import time

USAGE = ('usage: wasmtime-run.py [run] [--dir=HOST[::GUEST]]... [--relaxed-simd] [--allow-precompiled] [--timings] '
         'module.wasm [args...]\n'
         '       wasmtime-run.py batch [--dir=HOST[::GUEST]]... [--relaxed-simd] [--allow-precompiled] module.wasm '
         'JOBS.json\n'
         '       wasmtime-run.py compile [--relaxed-simd] [--target TRIPLE] [--timings] module.wasm -o module.cwasm\n')
TRAP_EXIT = 134


def usage(message):
    sys.stderr.write(f'wasmtime-run: {message}\n{USAGE}')
    return 2


def load_wasmtime():
    try:
        import wasmtime
    except ImportError as err:
        sys.stderr.write(f'wasmtime-run: the wasmtime Python package is missing ({err}); '
                         f'install it with: {sys.executable} -m pip install wasmtime==49.0.0\n')
        sys.exit(3)
    return wasmtime


def make_engine(wasmtime, relaxed_simd, target=None):
    config = wasmtime.Config()
    config.wasm_simd = True
    config.wasm_relaxed_simd = relaxed_simd
    if target:
        config.target = target
    return wasmtime.Engine(config)


def compile_command(args):
    relaxed, target, out, module_path, timings = False, None, None, None, False
    while args:
        a = args.pop(0)
        if a == '--relaxed-simd':
            relaxed = True
        elif a == '--timings':
            timings = True
        elif a in ('--target', '-o'):
            if not args:
                return usage(f'{a} needs a value')
            value = args.pop(0)
            if a == '-o':
                out = value
            else:
                target = value
        elif a.startswith('--target='):
            target = a.split('=', 1)[1]
        elif a.startswith('-'):
            return usage(f'unknown option {a}')
        elif module_path is None:
            module_path = a
        else:
            return usage(f'unexpected argument {a}')
    if module_path is None or out is None:
        return usage('compile needs a module and -o FILE')
    wasmtime = load_wasmtime()
    try:
        engine = make_engine(wasmtime, relaxed, target)
        with open(module_path, 'rb') as f:
            wasm = f.read()
        t0 = time.perf_counter()
        module = wasmtime.Module(engine, wasm)
        t1 = time.perf_counter()
        data = module.serialize()
    except (wasmtime.WasmtimeError, OSError) as err:
        sys.stderr.write(f'wasmtime-run: cannot compile {module_path}: {err}\n')
        return 1
    tmp = out + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, out)
    if timings:
        sys.stderr.write(f'wasmtime-run: compile_ms={(t1 - t0) * 1e3:.3f}\n')
    return 0


def parse_run_options(args):
    """Consumes the leading options of `run` and `batch`; returns (options, None) or (None, exit code)."""
    opts = {'dirs': [], 'relaxed': False, 'precompiled': False, 'timings': False}
    while args and args[0].startswith('-'):
        a = args.pop(0)
        if a == '--dir' or a.startswith('--dir='):
            spec = a[len('--dir='):] if a.startswith('--dir=') else (args.pop(0) if args else '')
            if not spec:
                return None, usage('--dir needs a directory')
            host, _, guest = spec.partition('::')
            opts['dirs'].append((host, guest or host))
        elif a == '--relaxed-simd':
            opts['relaxed'] = True
        elif a == '--allow-precompiled':
            opts['precompiled'] = True
        elif a == '--timings':
            opts['timings'] = True
        elif a == '--':
            break
        else:
            return None, usage(f'unknown option {a}')
    if not args:
        return None, usage('missing module')
    for host, _ in opts['dirs']:
        if not os.path.isdir(host):
            sys.stderr.write(f'wasmtime-run: --dir {host}: not a directory\n')
            return None, 1
    return opts, None


def load_module(wasmtime, engine, module_path, precompiled):
    """The compiled module, or None after a message on stderr."""
    try:
        with open(module_path, 'rb') as f:
            data = f.read()
        if data[:4] == b'\0asm':
            return wasmtime.Module(engine, data)
        if precompiled:
            return wasmtime.Module.deserialize(engine, data)
        sys.stderr.write(f'wasmtime-run: {module_path} is not a wasm module '
                         '(a precompiled one needs --allow-precompiled)\n')
    except (wasmtime.WasmtimeError, OSError) as err:
        sys.stderr.write(f'wasmtime-run: cannot load {module_path}: {err}\n')
    return None


def start_command(wasmtime, engine, linker, module, module_path, wasi):
    """Instantiates the module in a fresh store with `wasi` and runs _start; returns (exit code, trap message)."""
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    try:
        instance = linker.instantiate(store, module)
        start = instance.exports(store).get('_start')
        if start is None:
            return 1, f'wasmtime-run: {module_path} has no _start export (not a WASI command)\n'
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code, None
    except (wasmtime.Trap, wasmtime.WasmtimeError) as err:
        return TRAP_EXIT, f'wasm trap: {err}\n'
    return 0, None


def run_command(args):
    opts, code = parse_run_options(args)
    if opts is None:
        return code
    module_path, guest_args = args[0], args[1:]
    wasmtime = load_wasmtime()
    engine = make_engine(wasmtime, opts['relaxed'])
    t0 = time.perf_counter()
    module = load_module(wasmtime, engine, module_path, opts['precompiled'])
    if module is None:
        return 1
    t1 = time.perf_counter()

    wasi = wasmtime.WasiConfig()
    wasi.argv = [module_path, *guest_args]
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    for host, guest in opts['dirs']:
        wasi.preopen_dir(host, guest, False)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    code, message = start_command(wasmtime, engine, linker, module, module_path, wasi)
    if message:
        sys.stdout.flush()
        sys.stderr.write(message)
    t2 = time.perf_counter()
    if opts['timings']:
        sys.stderr.write(f'wasmtime-run: compile_ms={(t1 - t0) * 1e3:.3f} run_ms={(t2 - t1) * 1e3:.3f}\n')
    return code


def batch_command(args):
    opts, code = parse_run_options(args)
    if opts is None:
        return code
    if len(args) != 2:
        return usage('batch needs a module and a JSON file of argument lists')
    module_path, jobs_path = args
    try:
        with open(jobs_path, encoding='utf-8') as f:
            jobs = json.load(f)
    except (OSError, ValueError) as err:
        sys.stderr.write(f'wasmtime-run: cannot read {jobs_path}: {err}\n')
        return 1
    if not isinstance(jobs, list) or not all(isinstance(j, list) and all(isinstance(a, str) for a in j) for j in jobs):
        sys.stderr.write(f'wasmtime-run: {jobs_path} must hold a JSON list of lists of strings\n')
        return 1
    wasmtime = load_wasmtime()
    engine = make_engine(wasmtime, opts['relaxed'])
    module = load_module(wasmtime, engine, module_path, opts['precompiled'])
    if module is None:
        return 1
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    scratch = tempfile.mkdtemp(prefix='wasmtime-run-')
    try:
        out_path, err_path = os.path.join(scratch, 'stdout'), os.path.join(scratch, 'stderr')
        for guest_args in jobs:
            wasi = wasmtime.WasiConfig()
            wasi.argv = [module_path, *guest_args]
            wasi.stdout_file = out_path  # truncated per run
            wasi.stderr_file = err_path
            for host, guest in opts['dirs']:
                wasi.preopen_dir(host, guest, False)
            code, message = start_command(wasmtime, engine, linker, module, module_path, wasi)
            with open(out_path, encoding='utf-8', errors='replace') as f:
                out = f.read()
            with open(err_path, encoding='utf-8', errors='replace') as f:
                err = f.read() + (message or '')
            sys.stdout.write(json.dumps({'code': code, 'stdout': out, 'stderr': err}) + '\n')
            sys.stdout.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def main(argv):
    args = list(argv)
    if args[:1] == ['--version']:
        wasmtime = load_wasmtime()
        version = getattr(wasmtime, '__version__', None)
        if version is None:
            from importlib.metadata import version as dist_version
            version = dist_version('wasmtime')
        print(f'wasmtime-py {version}')
        return 0
    if args[:1] == ['compile']:
        return compile_command(args[1:])
    if args[:1] == ['batch']:
        return batch_command(args[1:])
    if args[:1] == ['run']:
        args = args[1:]
    return run_command(args)


if __name__ == '__main__':
    sys.stdout.flush()
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: skips interpreter teardown, which could otherwise run after the guest's output and slow each call.
    os._exit(code & 0xff if code >= 0 else 1)
