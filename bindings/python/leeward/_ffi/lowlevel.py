r"""Wrapper for leeward.h

Generated with:
ctypesgen -l leeward --no-embed-preamble -o bindings/python/leeward/_ffi/lowlevel.py include/leeward.h

Do not modify this file.
"""

__docformat__ = "restructuredtext"

# Begin preamble for Python

from .ctypes_preamble import *
from .ctypes_preamble import _variadic_function

# End preamble

_libs = {}
_libdirs = []

# Begin loader

from .ctypes_loader import *

# End loader

add_library_search_dirs([])

# Begin libraries
_libs["leeward"] = load_library("leeward")

# 1 libraries
# End libraries

# No modules

__uint64_t = c_ulong# /usr/include/x86_64-linux-gnu/bits/types.h: 45

uint64_t = __uint64_t# /usr/include/x86_64-linux-gnu/bits/stdint-uintn.h: 27

# include/leeward.h: 82
class struct_LeewardHandle(Structure):
    pass

LeewardHandle = struct_LeewardHandle# include/leeward.h: 82

# include/leeward.h: 91
class struct_anon_3(Structure):
    pass

struct_anon_3.__slots__ = [
    'host',
    'sandbox',
    'read_only',
]
struct_anon_3._fields_ = [
    ('host', String),
    ('sandbox', String),
    ('read_only', c_int),
]

LeewardMount = struct_anon_3# include/leeward.h: 91

# include/leeward.h: 103
class struct_anon_4(Structure):
    pass

struct_anon_4.__slots__ = [
    'timeout_secs',
    'memory_limit',
    'mounts',
    'mounts_len',
]
struct_anon_4._fields_ = [
    ('timeout_secs', c_double),
    ('memory_limit', uint64_t),
    ('mounts', POINTER(LeewardMount)),
    ('mounts_len', c_size_t),
]

LeewardOptions = struct_anon_4# include/leeward.h: 103

# include/leeward.h: 133
class struct_anon_5(Structure):
    pass

struct_anon_5.__slots__ = [
    'exit_code',
    'stdout_data',
    'stdout_len',
    'stderr_data',
    'stderr_len',
    'duration_us',
    'memory_peak',
    'cpu_time_us',
    'timed_out',
    'oom_killed',
    'stdout_truncated',
    'stderr_truncated',
    'details_json',
]
struct_anon_5._fields_ = [
    ('exit_code', c_int),
    ('stdout_data', String),
    ('stdout_len', c_size_t),
    ('stderr_data', String),
    ('stderr_len', c_size_t),
    ('duration_us', uint64_t),
    ('memory_peak', uint64_t),
    ('cpu_time_us', uint64_t),
    ('timed_out', c_int),
    ('oom_killed', c_int),
    ('stdout_truncated', c_int),
    ('stderr_truncated', c_int),
    ('details_json', String),
]

LeewardResult = struct_anon_5# include/leeward.h: 133

# include/leeward.h: 138
for _lib in _libs.values():
    if not _lib.has("leeward_connect", "cdecl"):
        continue
    leeward_connect = _lib.get("leeward_connect", "cdecl")
    leeward_connect.argtypes = [String]
    leeward_connect.restype = POINTER(LeewardHandle)
    break

# include/leeward.h: 143
for _lib in _libs.values():
    if not _lib.has("leeward_execute", "cdecl"):
        continue
    leeward_execute = _lib.get("leeward_execute", "cdecl")
    leeward_execute.argtypes = [POINTER(LeewardHandle), String, POINTER(LeewardOptions)]
    leeward_execute.restype = POINTER(LeewardResult)
    break

# include/leeward.h: 146
for _lib in _libs.values():
    if not _lib.has("leeward_result_free", "cdecl"):
        continue
    leeward_result_free = _lib.get("leeward_result_free", "cdecl")
    leeward_result_free.argtypes = [POINTER(LeewardResult)]
    leeward_result_free.restype = None
    break

# include/leeward.h: 149
for _lib in _libs.values():
    if not _lib.has("leeward_disconnect", "cdecl"):
        continue
    leeward_disconnect = _lib.get("leeward_disconnect", "cdecl")
    leeward_disconnect.argtypes = [POINTER(LeewardHandle)]
    leeward_disconnect.restype = None
    break

# include/leeward.h: 153
for _lib in _libs.values():
    if not _lib.has("leeward_last_error", "cdecl"):
        continue
    leeward_last_error = _lib.get("leeward_last_error", "cdecl")
    leeward_last_error.argtypes = []
    leeward_last_error.restype = c_char_p
    break

# include/leeward.h: 156
for _lib in _libs.values():
    if not _lib.has("leeward_version", "cdecl"):
        continue
    leeward_version = _lib.get("leeward_version", "cdecl")
    leeward_version.argtypes = []
    leeward_version.restype = c_char_p
    break

# include/leeward.h: 161
for _lib in _libs.values():
    if not _lib.has("leeward_last_error_code", "cdecl"):
        continue
    leeward_last_error_code = _lib.get("leeward_last_error_code", "cdecl")
    leeward_last_error_code.argtypes = []
    leeward_last_error_code.restype = c_char_p
    break

# include/leeward.h: 164
for _lib in _libs.values():
    if not _lib.has("leeward_ping", "cdecl"):
        continue
    leeward_ping = _lib.get("leeward_ping", "cdecl")
    leeward_ping.argtypes = [POINTER(LeewardHandle)]
    leeward_ping.restype = c_int
    break

# include/leeward.h: 168
for _lib in _libs.values():
    if not _lib.has("leeward_status_json", "cdecl"):
        continue
    leeward_status_json = _lib.get("leeward_status_json", "cdecl")
    leeward_status_json.argtypes = [POINTER(LeewardHandle)]
    if sizeof(c_int) == sizeof(c_void_p):
        leeward_status_json.restype = ReturnString
    else:
        leeward_status_json.restype = String
        leeward_status_json.errcheck = ReturnString
    break

# include/leeward.h: 171
for _lib in _libs.values():
    if not _lib.has("leeward_string_free", "cdecl"):
        continue
    leeward_string_free = _lib.get("leeward_string_free", "cdecl")
    leeward_string_free.argtypes = [String]
    leeward_string_free.restype = None
    break

# include/leeward.h: 79
try:
    LEEWARD_VERSION = '0.1.0'
except:
    pass

LeewardHandle = struct_LeewardHandle# include/leeward.h: 82

# No inserted files

# No prefix-stripping

