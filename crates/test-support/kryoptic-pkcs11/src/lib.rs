//! The Kryoptic software token as a PKCS#11 module (a shared library), for
//! tests and benches only.
//!
//! `kryoptic-lib` implements the whole token but exports no C symbols; a
//! PKCS#11 module must export `C_GetFunctionList` (and, from PKCS#11 3.0 on,
//! `C_GetInterfaceList` and `C_GetInterface`). This crate exports exactly
//! those three, forwarding to the library's implementations, which is what
//! upstream's own `kryoptic_pkcs11` cdylib does.
//!
//! The token reads its configuration at `C_Initialize` (TOML: `[[slots]]`
//! with `dbtype = "sqlite"` and `dbargs = "/path/to/token.sql"`) from the
//! file named in the initialize arguments' `pReserved`, as the C string
//! `kryoptic_conf=/path/to/token.conf`, or else from the file named by the
//! environment variable `KRYOPTIC_CONF`. `strongroom-test-tokens` writes one
//! in a temporary directory and passes it through `pReserved`, so no test
//! sets an environment variable.
//!
//! The three functions are `unsafe extern "C"`: they write through the
//! pointers they are given, so a caller must pass valid ones, as every
//! PKCS#11 function requires. Exporting unmangled symbols is an `unsafe`
//! attribute in edition 2024 (the names must not clash with another symbol
//! of the process): these are the PKCS#11 entry points, which is the whole
//! purpose of a module, and only these items allow `unsafe_code`.

#![deny(unsafe_code)]

use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::{
    CK_FLAGS, CK_FUNCTION_LIST_PTR_PTR, CK_INTERFACE_PTR, CK_INTERFACE_PTR_PTR, CK_RV,
    CK_ULONG_PTR, CK_UTF8CHAR_PTR, CK_VERSION_PTR,
};

/// `C_GetFunctionList`: the PKCS#11 2.40 function table.
///
/// # Safety
/// `fnlist` must be null (refused with `CKR_ARGUMENTS_BAD`) or valid for
/// writing one `CK_FUNCTION_LIST_PTR`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(fnlist: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(fnlist)
}

/// `C_GetInterfaceList`: every interface (PKCS#11 3.x function tables).
///
/// # Safety
/// `count` must be null (refused with `CKR_ARGUMENTS_BAD`) or valid for
/// reading and writing one `CK_ULONG`. `interfaces` must be null (only the
/// count is written) or valid for writing `*count` `CK_INTERFACE`s.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterfaceList(
    interfaces: CK_INTERFACE_PTR,
    count: CK_ULONG_PTR,
) -> CK_RV {
    fn_get_interface_list(interfaces, count)
}

/// `C_GetInterface`: one interface by name and version.
///
/// # Safety
/// `name` must be null (the standard interface) or point to a NUL-terminated
/// string; `version` must be null (the newest version) or valid for reading
/// one `CK_VERSION`; `interface` must be null (refused with
/// `CKR_ARGUMENTS_BAD`) or valid for writing one `CK_INTERFACE_PTR`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetInterface(
    name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(name, version, interface, flags)
}
