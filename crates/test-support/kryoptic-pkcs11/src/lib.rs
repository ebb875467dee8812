//! The Kryoptic software token as a PKCS#11 module (a shared library), for
//! tests and benches only.
//!
//! `kryoptic-lib` implements the whole token but exports no C symbols; a
//! PKCS#11 module must export `C_GetFunctionList` (and, from PKCS#11 3.0 on,
//! `C_GetInterfaceList` and `C_GetInterface`). This crate exports exactly
//! those three, forwarding to the library's implementations, which is what
//! upstream's own `kryoptic_pkcs11` cdylib does.
//!
//! The token reads its configuration at `C_Initialize` from the file named
//! by `KRYOPTIC_CONF` (TOML: `[[slots]]` with `dbtype = "sqlite"` and
//! `dbargs = "/path/to/token.sql"`); `strongroom-test-tokens` writes one in
//! a temporary directory.

// Exporting unmangled symbols is an `unsafe` attribute in edition 2024: the
// names must not clash with another symbol of the process. These are the
// PKCS#11 entry points, which is the whole purpose of a module.
#![allow(unsafe_code)]

use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::{
    CK_FLAGS, CK_FUNCTION_LIST_PTR_PTR, CK_INTERFACE_PTR, CK_INTERFACE_PTR_PTR, CK_RV,
    CK_ULONG_PTR, CK_UTF8CHAR_PTR, CK_VERSION_PTR,
};

/// `C_GetFunctionList`: the PKCS#11 2.40 function table.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetFunctionList(fnlist: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(fnlist)
}

/// `C_GetInterfaceList`: every interface (PKCS#11 3.x function tables).
#[unsafe(no_mangle)]
pub extern "C" fn C_GetInterfaceList(interfaces: CK_INTERFACE_PTR, count: CK_ULONG_PTR) -> CK_RV {
    fn_get_interface_list(interfaces, count)
}

/// `C_GetInterface`: one interface by name and version.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetInterface(
    name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(name, version, interface, flags)
}
