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

# include/leeward.h: 122
class struct_LeewardHandle(Structure):
    pass

LeewardHandle = struct_LeewardHandle# include/leeward.h: 122

# include/leeward.h: 131
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

LeewardMount = struct_anon_3# include/leeward.h: 131

# include/leeward.h: 143
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

LeewardOptions = struct_anon_4# include/leeward.h: 143

# include/leeward.h: 173
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

LeewardResult = struct_anon_5# include/leeward.h: 173

# include/leeward.h: 178
for _lib in _libs.values():
    if not _lib.has("leeward_connect", "cdecl"):
        continue
    leeward_connect = _lib.get("leeward_connect", "cdecl")
    leeward_connect.argtypes = [String]
    leeward_connect.restype = POINTER(LeewardHandle)
    break

# include/leeward.h: 183
for _lib in _libs.values():
    if not _lib.has("leeward_execute", "cdecl"):
        continue
    leeward_execute = _lib.get("leeward_execute", "cdecl")
    leeward_execute.argtypes = [POINTER(LeewardHandle), String, POINTER(LeewardOptions)]
    leeward_execute.restype = POINTER(LeewardResult)
    break

# include/leeward.h: 186
for _lib in _libs.values():
    if not _lib.has("leeward_result_free", "cdecl"):
        continue
    leeward_result_free = _lib.get("leeward_result_free", "cdecl")
    leeward_result_free.argtypes = [POINTER(LeewardResult)]
    leeward_result_free.restype = None
    break

# include/leeward.h: 189
for _lib in _libs.values():
    if not _lib.has("leeward_disconnect", "cdecl"):
        continue
    leeward_disconnect = _lib.get("leeward_disconnect", "cdecl")
    leeward_disconnect.argtypes = [POINTER(LeewardHandle)]
    leeward_disconnect.restype = None
    break

# include/leeward.h: 193
for _lib in _libs.values():
    if not _lib.has("leeward_last_error", "cdecl"):
        continue
    leeward_last_error = _lib.get("leeward_last_error", "cdecl")
    leeward_last_error.argtypes = []
    leeward_last_error.restype = c_char_p
    break

# include/leeward.h: 196
for _lib in _libs.values():
    if not _lib.has("leeward_version", "cdecl"):
        continue
    leeward_version = _lib.get("leeward_version", "cdecl")
    leeward_version.argtypes = []
    leeward_version.restype = c_char_p
    break

# include/leeward.h: 201
for _lib in _libs.values():
    if not _lib.has("leeward_last_error_code", "cdecl"):
        continue
    leeward_last_error_code = _lib.get("leeward_last_error_code", "cdecl")
    leeward_last_error_code.argtypes = []
    leeward_last_error_code.restype = c_char_p
    break

# include/leeward.h: 204
for _lib in _libs.values():
    if not _lib.has("leeward_ping", "cdecl"):
        continue
    leeward_ping = _lib.get("leeward_ping", "cdecl")
    leeward_ping.argtypes = [POINTER(LeewardHandle)]
    leeward_ping.restype = c_int
    break

# include/leeward.h: 208
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

# include/leeward.h: 211
for _lib in _libs.values():
    if not _lib.has("leeward_string_free", "cdecl"):
        continue
    leeward_string_free = _lib.get("leeward_string_free", "cdecl")
    leeward_string_free.argtypes = [String]
    leeward_string_free.restype = None
    break

# include/leeward.h: 233
for _lib in _libs.values():
    if not _lib.has("leeward_call", "cdecl"):
        continue
    leeward_call = _lib.get("leeward_call", "cdecl")
    leeward_call.argtypes = [POINTER(LeewardHandle), String, POINTER(POINTER(c_char))]
    leeward_call.restype = c_int
    break

LeewardEventCallback = CFUNCTYPE(UNCHECKED(None), String, POINTER(None))# include/leeward.h: 240

# include/leeward.h: 246
for _lib in _libs.values():
    if not _lib.has("leeward_call_stream", "cdecl"):
        continue
    leeward_call_stream = _lib.get("leeward_call_stream", "cdecl")
    leeward_call_stream.argtypes = [POINTER(LeewardHandle), String, LeewardEventCallback, POINTER(None), POINTER(POINTER(c_char))]
    leeward_call_stream.restype = c_int
    break

# include/leeward.h: 84
try:
    LEEWARD_VERSION = '0.1.0'
except:
    pass

# include/leeward.h: 90
try:
    LEEWARD_E_FRAME_EMPTY = 'E1001'
except:
    pass

# include/leeward.h: 91
try:
    LEEWARD_E_FRAME_TOO_LARGE = 'E1002'
except:
    pass

# include/leeward.h: 92
try:
    LEEWARD_E_FRAME_UNDECODABLE = 'E1003'
except:
    pass

# include/leeward.h: 93
try:
    LEEWARD_E_FRAME_NOT_A_MAP = 'E1004'
except:
    pass

# include/leeward.h: 94
try:
    LEEWARD_E_UNKNOWN_TYPE = 'E1005'
except:
    pass

# include/leeward.h: 95
try:
    LEEWARD_E_CONNECTION_CLOSED = 'E1006'
except:
    pass

# include/leeward.h: 96
try:
    LEEWARD_E_UNTRUSTED_SOCKET = 'E1007'
except:
    pass

# include/leeward.h: 98
try:
    LEEWARD_E_MISSING_FIELD = 'E2001'
except:
    pass

# include/leeward.h: 99
try:
    LEEWARD_E_WRONG_TYPE = 'E2002'
except:
    pass

# include/leeward.h: 100
try:
    LEEWARD_E_OUT_OF_RANGE = 'E2003'
except:
    pass

# include/leeward.h: 101
try:
    LEEWARD_E_UNKNOWN_FIELD = 'E2004'
except:
    pass

# include/leeward.h: 102
try:
    LEEWARD_E_BAD_PATH = 'E2005'
except:
    pass

# include/leeward.h: 103
try:
    LEEWARD_E_MOUNT_NOT_ALLOWED = 'E2006'
except:
    pass

# include/leeward.h: 104
try:
    LEEWARD_E_MOUNT_NOT_FOUND = 'E2007'
except:
    pass

# include/leeward.h: 105
try:
    LEEWARD_E_MOUNT_SYMLINK = 'E2008'
except:
    pass

# include/leeward.h: 106
try:
    LEEWARD_E_CODE_OR_ARGV = 'E2009'
except:
    pass

# include/leeward.h: 107
try:
    LEEWARD_E_FEATURE_DISABLED = 'E2010'
except:
    pass

# include/leeward.h: 109
try:
    LEEWARD_E_SANDBOX_UNAVAILABLE = 'E3001'
except:
    pass

# include/leeward.h: 110
try:
    LEEWARD_E_SANDBOX_FAILED = 'E3002'
except:
    pass

# include/leeward.h: 111
try:
    LEEWARD_E_SHUTTING_DOWN = 'E3003'
except:
    pass

# include/leeward.h: 112
try:
    LEEWARD_E_DAEMON_BUSY = 'E3004'
except:
    pass

# include/leeward.h: 114
try:
    LEEWARD_E_INTERNAL = 'E4001'
except:
    pass

# include/leeward.h: 116
try:
    LEEWARD_E_SESSION_NOT_FOUND = 'E5001'
except:
    pass

# include/leeward.h: 117
try:
    LEEWARD_E_SESSION_BUSY = 'E5002'
except:
    pass

# include/leeward.h: 118
try:
    LEEWARD_E_SESSION_ENDED = 'E5003'
except:
    pass

# include/leeward.h: 119
try:
    LEEWARD_E_SESSION_LIMIT = 'E5004'
except:
    pass

LeewardHandle = struct_LeewardHandle# include/leeward.h: 122

# No inserted files

# No prefix-stripping

