"""The grading kernel (autograder/kernel.py, autograder/boxed/kernel_launcher.py), started as
grading starts it: in a sandbox, over IPC sockets."""

import asyncio

from traitlets.config import Config

from autograder.kernel import SandboxedKernelManager

PROBE = """
import sys
try:
    import debugpy
    debugpy_ = "importable"
except ImportError:
    debugpy_ = "absent"
print(debugpy_, sorted(m for m, module in sys.modules.items()
                       if module is not None and m.startswith(("debugpy", "pydevd", "_pydevd"))),
      type(sys.modules["matplotlib.pyplot"]).__name__)
"""


async def run_in_grading_kernel(code: str, workdir: str):
    config = Config()
    config.SandboxedKernelManager.sandbox = {"workdir": workdir}
    km = SandboxedKernelManager(kernel_name="python3", config=config)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        info = await kc.kernel_info(reply=True, timeout=120)
        printed = []
        reply = await kc.execute_interactive(
            code, timeout=120,
            output_hook=lambda msg: printed.append(msg["content"].get("text", "")))
        return info["content"], reply["content"]["status"], "".join(printed)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_the_grading_kernel_starts_without_a_debugger(tmp_path):
    """ipykernel's debugger (debugpy) costs 0.2 s of CPU at each start and serves no grading;
    pyplot is imported only when something of it is used."""
    info, status, printed = asyncio.run(run_in_grading_kernel(PROBE, str(tmp_path / "box")))
    assert info["status"] == "ok" and "debugger" not in info.get("supported_features", [])
    assert status == "ok"
    assert printed.split() == ["absent", "[]", "DeferredPyplot"]
