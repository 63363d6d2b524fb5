#!/usr/bin/python3
"""Drive real Ganeti code (backend.py) on one node, without a cluster.

Reads one JSON request on stdin, prints one JSON answer on stdout; or a JSON list of requests,
answered in order by a list (one Python start-up for many questions). Run it with Debian's
/usr/bin/python3 and PYTHONPATH set to one release's code: /usr/share/ganeti/3.0 (bookworm's
ganeti-3.0), or Debian trixie's ganeti-3.1 as test/helpers/ganeti-code.ts unpacks it (it imports
under bookworm's Python 3.11). Nothing here differs per release.

Patched, because they need a live cluster or a system-wide install (and only these):
  * backend._OpenRealBD: Ganeti looks the disk up among activated block devices (LVM, DRBD,
    file storage daemons); here the disk is a plain file or block device whose path we know.
  * pathutils.OS_SEARCH_PATH: the OS under test lives in a temporary directory instead of
    /srv/ganeti/os; Ganeti's lookup code itself runs unchanged.
  * pathutils.LOG_OS_DIR: where create/rename logs go, the request's "logdir", else a new
    temporary directory (removed unless a failed call left a log in it; then the answer names
    it as "logdir"). Ganeti's own, /var/log/ganeti/os, is root's: never written here.
A failure of this harness itself (a request it cannot set up) is not an answer: it exits 2 with
its traceback on stderr, so the caller shows why instead of a bare "ok": false.

Everything else - _TryOSFromDisk, OSEnvironment, InstanceOsAdd, RunRenameInstance, ValidateOS,
_GetImportExportIoCommand, DiagnoseOS - is Ganeti's own code.

Requests ({"action": ..., ...}):
  tryos      {dir}                          -> _TryOSFromDisk(basename, base_dir=dirname)
  diagnose   {dirs}                         -> DiagnoseOS(dirs)
  env        {instance, debug?}             -> OSEnvironment
  add        {instance, reinstall?, debug?} -> InstanceOsAdd
  rename     {instance, old_name, debug?}   -> RunRenameInstance
  export     {instance, index, output}      -> the export script as the import-export daemon runs it
  import     {instance, index, input}       -> the import script likewise
  validate   {os_dir, os_name, osparams, checks?, force_variant?} -> ValidateOS
An "instance" is {name, os, hypervisor?, disks: [{path, size?, template?, name?, mode?}],
nics: [{mac?, ip?, mode?, link?, name?, network?: {...}}], osparams?, hvparams?, beparams?,
uuid?, ctime?, mtime?, primary_node?, secondary_nodes?, os_dir}. hvparams and beparams are
filled with Ganeti's defaults (constants.HVC_DEFAULTS / BEC_DEFAULTS) as a fresh cluster would.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

from ganeti import backend, constants, errors, objects, pathutils, serializer, utils


class _FakeBlockDev(object):
  """What backend needs of a block device: its path."""

  def __init__(self, dev_path):
    self.dev_path = dev_path

  def Open(self):
    pass


def _open_real_bd(disk):
  # Patched: the disk's file/device path is carried in the Disk object we built.
  return _FakeBlockDev(disk.logical_id[1] if disk.dev_type in constants.DTS_FILEBASED
                       else disk.physical_id_path)


backend._OpenRealBD = _open_real_bd


class _Disk(objects.Disk):
  __slots__ = ["physical_id_path"]


def _make_network(spec, idx):
  net = objects.Network(name=spec.get("name", "net%d" % idx),
                        uuid=spec.get("uuid", "00000000-0000-4000-8000-0000000000%02d" % idx),
                        network=spec.get("subnet"), gateway=spec.get("gateway"),
                        network6=spec.get("subnet6"), gateway6=spec.get("gateway6"),
                        mac_prefix=spec.get("mac_prefix"), tags=set(spec.get("tags", [])))
  return net.ToDict()


def build_instance(spec):
  hv = spec.get("hypervisor", constants.HT_KVM)
  hvparams = objects.FillDict(constants.HVC_DEFAULTS[hv], spec.get("hvparams", {}))
  beparams = objects.FillDict(constants.BEC_DEFAULTS, spec.get("beparams", {}))
  disks = []
  for idx, d in enumerate(spec.get("disks", [])):
    template = d.get("template", "file")
    path = d["path"]
    size = d.get("size")
    if size is None:
      size = os.stat(path).st_size // (1024 * 1024)
    if template in ("file", "sharedfile"):
      dev_type = constants.DT_FILE if template == "file" else constants.DT_SHARED_FILE
      logical_id = (constants.FD_LOOP, path)
    else:
      dev_type = constants.DT_PLAIN
      logical_id = ("xenvg", "disk%d" % idx)
    disk = _Disk(dev_type=dev_type, logical_id=logical_id, size=size,
                 mode=d.get("mode", constants.DISK_RDWR), params={},
                 uuid=d.get("uuid", "11111111-1111-4111-8111-1111111111%02d" % idx),
                 name=d.get("name"), iv_name="disk/%d" % idx, children=[], nodes=[])
    disk.physical_id_path = path
    disks.append(disk)
  nics = []
  for idx, n in enumerate(spec.get("nics", [])):
    nicparams = {constants.NIC_MODE: n.get("mode", constants.NIC_MODE_BRIDGED),
                 constants.NIC_LINK: n.get("link", constants.DEFAULT_BRIDGE),
                 constants.NIC_VLAN: n.get("vlan", "")}
    nic = objects.NIC(mac=n.get("mac", "aa:00:00:00:00:%02x" % idx), ip=n.get("ip"),
                      name=n.get("name"), nicparams=nicparams,
                      uuid=n.get("uuid", "22222222-2222-4222-8222-2222222222%02d" % idx),
                      network=None, netinfo=None)
    if n.get("network"):
      nic.netinfo = _make_network(n["network"], idx)
      nic.network = nic.netinfo["uuid"]
    nics.append(nic)
  inst = objects.Instance(
    name=spec["name"], os=spec["os"], hypervisor=hv, hvparams=hvparams, beparams=beparams,
    osparams=spec.get("osparams", {}),
    uuid=spec.get("uuid", "33333333-3333-4333-8333-333333333333"),
    ctime=spec.get("ctime", 1700000000.0), mtime=spec.get("mtime", 1700000000.0),
    primary_node=spec.get("primary_node", "node1.example.com"),
    secondary_nodes=spec.get("secondary_nodes", []), disks=[d.uuid for d in disks],
    nics=nics, disk_template=spec.get("disk_template", "file"), admin_state="down")
  inst.disks_info = disks
  inst.osparams_private = serializer.PrivateDict(spec.get("osparams_private", {}))
  return inst


class HarnessError(Exception):
  """The harness could not set up the request: not Ganeti's answer."""


# The temporary log directory of this call, when the request named none.
_TEMP_LOGDIR = []


def _use_os_dir(req):
  os_dir = req.get("os_dir") or req.get("instance", {}).get("os_dir")
  if os_dir:
    # Patched: search only where the OS under test lives (instead of /srv/ganeti/os ...).
    pathutils.OS_SEARCH_PATH = [os.path.dirname(os.path.abspath(os_dir))]
  try:
    if req.get("logdir"):
      pathutils.LOG_OS_DIR = req["logdir"]
      utils.Makedirs(pathutils.LOG_OS_DIR, mode=0o750)
    else:
      pathutils.LOG_OS_DIR = tempfile.mkdtemp(prefix="ganeti-os-harness-log-")
      _TEMP_LOGDIR.append(pathutils.LOG_OS_DIR)
  except OSError as err:
    raise HarnessError("cannot make the OS log directory %s: %s" % (pathutils.LOG_OS_DIR, err))


def _os_dict(os_obj):
  return {"name": os_obj.name, "path": os_obj.path, "api_versions": os_obj.api_versions,
          "variants": os_obj.supported_variants, "parameters": os_obj.supported_parameters,
          "create_script": os_obj.create_script,
          "create_script_untrusted": os_obj.create_script_untrusted,
          "verify_script": os_obj.verify_script}


def _run_ie(req, mode):
  _use_os_dir(req)
  inst = build_instance(req["instance"])
  idx = int(req["index"])
  disk = inst.disks_info[idx]
  ieio = constants.IEIO_SCRIPT
  env, prefix, suffix, exp_size = backend._GetImportExportIoCommand(inst, mode, ieio, (disk, idx))
  # As the import-export daemon does: its own environment (with the LC_ALL=C that
  # utils.StartDaemon adds) plus Ganeti's, EXP_SIZE_FD a pipe.
  cmd_env = {"PATH": constants.HOOKS_PATH, "LC_ALL": "C"}
  cmd_env.update(env)
  rfd, wfd = os.pipe()
  if exp_size == constants.IE_CUSTOM_SIZE:
    cmd_env["EXP_SIZE_FD"] = str(wfd)
  if mode == constants.IEM_EXPORT:
    shell = "%s cat > %s" % (prefix, utils.ShellQuote(req["output"]))
  else:
    shell = "cat < %s %s" % (utils.ShellQuote(req["input"]), suffix)
  proc = subprocess.Popen(["bash", "-o", "errexit", "-o", "pipefail", "-c", shell], env=cmd_env,
                          pass_fds=[wfd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
  os.close(wfd)
  announced = os.read(rfd, 4096).decode("utf-8", "replace")
  out, err = proc.communicate()
  os.close(rfd)
  return {"ok": proc.returncode == 0, "returncode": proc.returncode, "command": shell,
          "announced": announced, "stderr": err.decode("utf-8", "replace"),
          "stdout": out.decode("utf-8", "replace"), "env": cmd_env}


def handle(req):
  action = req["action"]
  if action == "tryos":
    d = os.path.abspath(req["dir"])
    status, payload = backend._TryOSFromDisk(os.path.basename(d), base_dir=os.path.dirname(d))
    if status:
      return {"ok": True, "os": _os_dict(payload)}
    return {"ok": False, "error": payload}
  if action == "diagnose":
    return {"ok": True, "result": [list(r) for r in backend.DiagnoseOS(req["dirs"])]}
  if action == "env":
    _use_os_dir(req)
    inst = build_instance(req["instance"])
    inst_os = backend.OSFromDisk(inst.os)
    return {"ok": True, "env": backend.OSEnvironment(inst, inst_os, req.get("debug", 0))}
  if action == "add":
    _use_os_dir(req)
    inst = build_instance(req["instance"])
    backend.InstanceOsAdd(inst, req.get("reinstall", False), req.get("debug", 0))
    return {"ok": True}
  if action == "rename":
    _use_os_dir(req)
    inst = build_instance(req["instance"])
    backend.RunRenameInstance(inst, req["old_name"], req.get("debug", 0))
    return {"ok": True}
  if action == "export":
    return _run_ie(req, constants.IEM_EXPORT)
  if action == "import":
    return _run_ie(req, constants.IEM_IMPORT)
  if action == "validate":
    _use_os_dir(req)
    res = backend.ValidateOS(True, req["os_name"], req.get("checks", [constants.OS_VALIDATE_PARAMETERS]),
                             req.get("osparams", {}), req.get("force_variant", False))
    return {"ok": bool(res)}
  raise HarnessError("unknown action %r" % action)


_PATCHED_DEFAULTS = (pathutils.OS_SEARCH_PATH, pathutils.LOG_OS_DIR)


def answer(req):
  # Each request of a batch starts from the same patched state.
  pathutils.OS_SEARCH_PATH, pathutils.LOG_OS_DIR = _PATCHED_DEFAULTS
  del _TEMP_LOGDIR[:]
  try:
    ans = handle(req)
  except HarnessError:
    raise
  except errors.GenericError as err:
    ans = {"ok": False, "error": str(err.args[0]) if err.args else str(err),
           "type": err.__class__.__name__}
  except Exception as err:  # pylint: disable=broad-except
    ans = {"ok": False, "error": str(err), "type": err.__class__.__name__,
           "traceback": traceback.format_exc()}
  # The temporary log directory goes; what a failed call logged travels in the answer ("log":
  # each file's name and text), so that nothing of a call is left in TMPDIR.
  for logdir in _TEMP_LOGDIR:
    if not ans.get("ok"):
      for name in sorted(os.listdir(logdir)):
        try:
          with open(os.path.join(logdir, name), errors="replace") as f:
            ans.setdefault("log", {})[name] = f.read()[-65536:]
        except OSError:
          pass
    shutil.rmtree(logdir, ignore_errors=True)
  return ans


def main():
  req = json.load(sys.stdin)
  try:
    ans = [answer(r) for r in req] if isinstance(req, list) else answer(req)
  except HarnessError as err:
    sys.stderr.write("harness: %s\n%s" % (err, traceback.format_exc()))
    sys.exit(2)
  json.dump(ans, sys.stdout)
  sys.stdout.write("\n")


if __name__ == "__main__":
  main()
