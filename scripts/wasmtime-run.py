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
  python3 scripts/wasmtime-run.py --version      prints `wasmtime-py X.Y.Z`

The guest sees argv = [module path as given, args...], no environment, and inherits stdin, stdout and stderr.
Exit status: the module's own (`proc_exit`, 0 when `_start` returns); 134 on a wasm trap (as the CLI: 128+SIGABRT),
with `wasm trap: ...` on stderr; 2 for a usage error of this runner; 3 if the wasmtime package is missing.
"""
import os
import sys
import time

USAGE = ('usage: wasmtime-run.py [run] [--dir=HOST[::GUEST]]... [--relaxed-simd] [--allow-precompiled] [--timings] '
         'module.wasm [args...]\n'
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


def run_command(args):
    dirs, relaxed, precompiled, timings = [], False, False, False
    while args and args[0].startswith('-'):
        a = args.pop(0)
        if a == '--dir' or a.startswith('--dir='):
            spec = a[len('--dir='):] if a.startswith('--dir=') else (args.pop(0) if args else '')
            if not spec:
                return usage('--dir needs a directory')
            host, _, guest = spec.partition('::')
            dirs.append((host, guest or host))
        elif a == '--relaxed-simd':
            relaxed = True
        elif a == '--allow-precompiled':
            precompiled = True
        elif a == '--timings':
            timings = True
        elif a == '--':
            break
        else:
            return usage(f'unknown option {a}')
    if not args:
        return usage('missing module')
    module_path, guest_args = args[0], args[1:]
    for host, _ in dirs:
        if not os.path.isdir(host):
            sys.stderr.write(f'wasmtime-run: --dir {host}: not a directory\n')
            return 1

    wasmtime = load_wasmtime()
    engine = make_engine(wasmtime, relaxed)
    t0 = time.perf_counter()
    try:
        with open(module_path, 'rb') as f:
            data = f.read()
        if data[:4] == b'\0asm':
            module = wasmtime.Module(engine, data)
        elif precompiled:
            module = wasmtime.Module.deserialize(engine, data)
        else:
            sys.stderr.write(f'wasmtime-run: {module_path} is not a wasm module '
                             '(a precompiled one needs --allow-precompiled)\n')
            return 1
    except (wasmtime.WasmtimeError, OSError) as err:
        sys.stderr.write(f'wasmtime-run: cannot load {module_path}: {err}\n')
        return 1
    t1 = time.perf_counter()

    wasi = wasmtime.WasiConfig()
    wasi.argv = [module_path, *guest_args]
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    for host, guest in dirs:
        wasi.preopen_dir(host, guest, False)
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    code = 0
    try:
        instance = linker.instantiate(store, module)
        start = instance.exports(store).get('_start')
        if start is None:
            sys.stderr.write(f'wasmtime-run: {module_path} has no _start export (not a WASI command)\n')
            return 1
        start(store)
    except wasmtime.ExitTrap as exit_trap:
        code = exit_trap.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as err:
        sys.stdout.flush()
        sys.stderr.write(f'wasm trap: {err}\n')
        code = TRAP_EXIT
    t2 = time.perf_counter()
    if timings:
        sys.stderr.write(f'wasmtime-run: compile_ms={(t1 - t0) * 1e3:.3f} run_ms={(t2 - t1) * 1e3:.3f}\n')
    return code


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
