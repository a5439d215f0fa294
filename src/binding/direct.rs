//! The calls JavaScript makes once per message, registered as plain Node-API callbacks. napi-rs 3 wraps every
//! `#[napi]` function that takes arguments in a borrow scope: an allocated, mutex-guarded record and pushes on
//! thread-local stacks, made and torn down around each call. For `send` that was 8.5 % of all the server's
//! time in the 32-byte echo (perf, cpu-clock, DWARF call graphs). These callbacks read their arguments
//! themselves and call the same code as the rest of the binding.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::{sys, Env};

use super::connection::{send, send_as, SendOptions};
use super::values::check;

/// Adds the direct calls to the module's exports, beside the `#[napi]` ones.
#[napi(module_exports)]
pub fn register_direct_calls(exports: Object<'_>, env: Env) -> Result<()> {
    let calls: [(&std::ffi::CStr, sys::napi_callback); 2] =
        [(c"connectionSend", Some(connection_send)), (c"connectionSendAs", Some(connection_send_as))];
    for (name, callback) in calls {
        let mut function = ptr::null_mut();
        let status = unsafe { sys::napi_create_function(env.raw(), name.as_ptr(), name.count_bytes() as isize, callback, ptr::null_mut(), &mut function) };
        check(status, "create function")?;
        check(unsafe { sys::napi_set_named_property(env.raw(), exports.raw(), name.as_ptr(), function) }, "export")?;
    }
    Ok(())
}

/// Runs `body` with the call's first N arguments (missing ones are `undefined`); an error or a panic becomes a
/// JavaScript exception, never an unwind across the FFI.
unsafe fn call<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce(sys::napi_env, [sys::napi_value; N]) -> Result<sys::napi_value>,
) -> sys::napi_value {
    let mut args = [ptr::null_mut(); N];
    let mut count = N;
    let outcome = match check(sys::napi_get_cb_info(env, info, &mut count, args.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()), "arguments") {
        Ok(()) => catch_unwind(AssertUnwindSafe(|| body(env, args))).unwrap_or_else(|panic| Err(napi::bindgen_prelude::panic_to_error(panic))),
        Err(e) => Err(e),
    };
    outcome.unwrap_or_else(|e| {
        JsError::from(e).throw_into(env);
        ptr::null_mut()
    })
}

unsafe fn boolean(env: sys::napi_env, value: bool) -> Result<sys::napi_value> {
    bool::to_napi_value(env, value)
}

/// `connectionSend(id, data)`: see `connection::send`.
unsafe extern "C" fn connection_send(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    call::<2>(env, info, |env, [id, data]| boolean(env, send(Env::from_raw(env), u32::from_napi_value(env, id)?, data)?))
}

/// `connectionSendAs(id, data, binary, options)`: see `connection::send_as`.
unsafe extern "C" fn connection_send_as(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    call::<4>(env, info, |env, [id, data, binary, options]| {
        let options = Option::<SendOptions>::from_napi_value(env, options)?;
        boolean(env, send_as(Env::from_raw(env), u32::from_napi_value(env, id)?, data, bool::from_napi_value(env, binary)?, options)?)
    })
}
