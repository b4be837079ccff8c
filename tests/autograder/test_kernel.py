"""The grading kernel (autograder/kernel.py, autograder/boxed/kernel_launcher.py), started as
grading starts it: in a sandbox, over IPC sockets."""

import ast
import asyncio

from traitlets.config import Config

from autograder.kernel import SandboxedKernelManager

# As a notebook's setup cell begins; then what the kernel has loaded.
PROBE = """
import sys
import matplotlib.pyplot as plt
try:
    import debugpy
    debugpy_ = "importable"
except ImportError:
    debugpy_ = "absent"
probe = (debugpy_, sorted(m for m, module in sys.modules.items()
                          if module is not None and m.startswith(("debugpy", "pydevd", "_pydevd"))),
         type(plt).__name__, "matplotlib.rcsetup" in sys.modules)
"""


async def run_in_grading_kernel(code: str, workdir: str):
    """The kernel's kernel_info reply and the value of ``probe`` once ``code`` ran, both read
    from replies on the shell channel (output on iopub can be missed by a client just started)."""
    config = Config()
    config.SandboxedKernelManager.sandbox = {"workdir": workdir}
    km = SandboxedKernelManager(kernel_name="python3", config=config)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        info = await kc.kernel_info(reply=True, timeout=120)
        reply = await kc.execute(code, user_expressions={"probe": "probe"}, reply=True, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        value = reply["content"]["user_expressions"]["probe"]
        assert value["status"] == "ok", value
        return info["content"], ast.literal_eval(value["data"]["text/plain"])
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_the_grading_kernel_starts_without_a_debugger_and_matplotlib(tmp_path):
    """ipykernel's debugger (debugpy) costs 0.2 s of CPU at each start and serves no grading;
    matplotlib and pyplot are imported only when something of them is used."""
    info, probe = asyncio.run(run_in_grading_kernel(PROBE, str(tmp_path / "box")))
    assert info["status"] == "ok" and "debugger" not in info.get("supported_features", [])
    assert probe == ("absent", [], "DeferredPyplot", False)
