//! Raw napi calls on the hot path (messages in and out), where the generic conversions would allocate, and the
//! argument checks the native classes share.

use std::ptr;

use bytes::{Bytes, BytesMut};
use napi::{sys, Error, Result, Status};

use crate::net::topics::MAX_TOPIC_LEN;

pub(super) fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), format!("napi call failed: {what}")))
    }
}

pub unsafe fn undefined(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    check(sys::napi_get_undefined(env, &mut v), "undefined")?;
    Ok(v)
}

pub unsafe fn uint32(env: sys::napi_env, n: u32) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    check(sys::napi_create_uint32(env, n, &mut v), "uint32")?;
    Ok(v)
}

pub unsafe fn double(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    check(sys::napi_create_double(env, n, &mut v), "double")?;
    Ok(v)
}

pub unsafe fn string(env: sys::napi_env, utf8: &[u8]) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    check(sys::napi_create_string_utf8(env, utf8.as_ptr().cast(), utf8.len() as isize, &mut v), "string")?;
    Ok(v)
}

pub unsafe fn array(env: sys::napi_env, len: usize) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    check(sys::napi_create_array_with_length(env, len, &mut v), "array")?;
    Ok(v)
}

/// A `Uint32Array` of `len` elements (zeroed) and its storage, which stays valid while the array is reachable.
pub unsafe fn uint32_array<'a>(env: sys::napi_env, len: usize) -> Result<(sys::napi_value, &'a mut [u32])> {
    let mut buffer = ptr::null_mut();
    let mut data = ptr::null_mut();
    check(sys::napi_create_arraybuffer(env, len * 4, &mut data, &mut buffer), "Uint32Array storage")?;
    let mut array = ptr::null_mut();
    check(sys::napi_create_typedarray(env, sys::TypedarrayType::uint32_array, len, buffer, 0, &mut array), "Uint32Array")?;
    let codes = if len == 0 { &mut [][..] } else { std::slice::from_raw_parts_mut(data.cast::<u32>(), len) };
    Ok((array, codes))
}

pub unsafe fn set_element(env: sys::napi_env, array: sys::napi_value, index: u32, value: sys::napi_value) -> Result<()> {
    check(sys::napi_set_element(env, array, index, value), "set element")
}

/// Above this size an ArrayBuffer borrows the received bytes instead of copying them.
const EXTERNAL_THRESHOLD: usize = 64 * 1024;

unsafe extern "C" fn drop_bytes(_env: sys::napi_env, _data: *mut std::ffi::c_void, hint: *mut std::ffi::c_void) {
    drop(Box::from_raw(hint.cast::<Bytes>()));
}

/// An ArrayBuffer holding `bytes`: copied when small, shared without a copy when large. Only a shared one takes
/// a reference: cloning promotes a payload made from a Vec to a shared one, an allocation of its own.
pub unsafe fn array_buffer(env: sys::napi_env, bytes: &Bytes) -> Result<sys::napi_value> {
    if bytes.len() >= EXTERNAL_THRESHOLD {
        let mut v = ptr::null_mut();
        let data = bytes.as_ptr() as *mut std::ffi::c_void;
        let hint = Box::into_raw(Box::new(bytes.clone()));
        let status = sys::napi_create_external_arraybuffer(env, data, bytes.len(), Some(drop_bytes), hint.cast(), &mut v);
        if status == sys::Status::napi_ok {
            return Ok(v);
        }
        // Runtimes that forbid external buffers: fall back to a copy.
        drop(Box::from_raw(hint));
    }
    copied_array_buffer(env, bytes)
}

/// From this size a copy goes into the ArrayBuffer of a Node Buffer, which is not zero-filled before it (a plain
/// ArrayBuffer is: a memset as long as the copy).
const UNFILLED_THRESHOLD: usize = 1024;

unsafe fn copied_array_buffer(env: sys::napi_env, bytes: &[u8]) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    let mut data = ptr::null_mut();
    let mut whole = false;
    if bytes.len() >= UNFILLED_THRESHOLD {
        let mut buffer = ptr::null_mut();
        check(sys::napi_create_buffer(env, bytes.len(), &mut data, &mut buffer), "buffer")?;
        let (mut kind, mut length, mut offset) = (0, 0, 0);
        check(sys::napi_get_typedarray_info(env, buffer, &mut kind, &mut length, ptr::null_mut(), &mut v, &mut offset), "buffer's arraybuffer")?;
        // Node gives such a Buffer an ArrayBuffer of its own; a runtime that pools them gets a plain one instead.
        let mut total = 0;
        check(sys::napi_get_arraybuffer_info(env, v, ptr::null_mut(), &mut total), "arraybuffer length")?;
        whole = offset == 0 && total == bytes.len();
    }
    if !whole {
        check(sys::napi_create_arraybuffer(env, bytes.len(), &mut data, &mut v), "arraybuffer")?;
    }
    if !bytes.is_empty() {
        ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len());
    }
    Ok(v)
}

/// What a JavaScript value given to `send` is, as bytes on the wire.
pub enum Payload<'a> {
    /// A string: `utf8_len` measures it, `write_utf8` copies it out.
    Text,
    Binary(&'a [u8]),
}

/// Classifies `value` for sending: a string, or the exact bytes of an ArrayBuffer or view. None for anything else.
pub unsafe fn payload<'a>(env: sys::napi_env, value: sys::napi_value) -> Result<Option<Payload<'a>>> {
    let mut kind = 0;
    check(sys::napi_typeof(env, value, &mut kind), "typeof")?;
    if kind == sys::ValueType::napi_string {
        return Ok(Some(Payload::Text));
    }
    if kind != sys::ValueType::napi_object {
        return Ok(None);
    }
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut len = 0usize;
    let mut yes = false;
    check(sys::napi_is_typedarray(env, value, &mut yes), "is typedarray")?;
    if yes {
        let mut ta_type = 0;
        let mut count = 0;
        let mut buffer = ptr::null_mut();
        let mut offset = 0;
        check(sys::napi_get_typedarray_info(env, value, &mut ta_type, &mut count, &mut data, &mut buffer, &mut offset), "typedarray info")?;
        len = count * element_size(ta_type);
    } else {
        check(sys::napi_is_arraybuffer(env, value, &mut yes), "is arraybuffer")?;
        if yes {
            check(sys::napi_get_arraybuffer_info(env, value, &mut data, &mut len), "arraybuffer info")?;
        } else {
            check(sys::napi_is_dataview(env, value, &mut yes), "is dataview")?;
            if !yes {
                return Ok(None);
            }
            let mut buffer = ptr::null_mut();
            let mut offset = 0;
            check(sys::napi_get_dataview_info(env, value, &mut len, &mut data, &mut buffer, &mut offset), "dataview info")?;
        }
    }
    let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    Ok(Some(Payload::Binary(bytes)))
}

fn element_size(ta_type: sys::napi_typedarray_type) -> usize {
    match ta_type {
        sys::TypedarrayType::int16_array | sys::TypedarrayType::uint16_array => 2,
        sys::TypedarrayType::int32_array | sys::TypedarrayType::uint32_array | sys::TypedarrayType::float32_array => 4,
        sys::TypedarrayType::float64_array | sys::TypedarrayType::bigint64_array | sys::TypedarrayType::biguint64_array => 8,
        _ => 1,
    }
}

/// The length of string `value`'s UTF-8: a pass of V8 over the string.
pub unsafe fn utf8_len(env: sys::napi_env, value: sys::napi_value) -> Result<usize> {
    let mut len = 0;
    check(sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len), "string length")?;
    Ok(len)
}

/// The most bytes string `value`'s UTF-8 can take, from its length in UTF-16 units (which V8 has at hand): 3
/// per unit, since a surrogate pair's 2 units take 4 and a lone surrogate becomes U+FFFD.
pub unsafe fn utf8_bound(env: sys::napi_env, value: sys::napi_value) -> Result<usize> {
    let mut units = 0;
    check(sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut units), "string units")?;
    Ok(units * 3)
}

/// Appends the UTF-8 of string `value` (at most `len` bytes of it, see `utf8_len` and `utf8_bound`) to `buf`
/// without an intermediate copy.
pub unsafe fn write_utf8(env: sys::napi_env, value: sys::napi_value, len: usize, buf: &mut BytesMut) {
    buf.reserve(len + 1); // napi writes a terminating NUL
    let spare = buf.spare_capacity_mut();
    let mut written = 0;
    sys::napi_get_value_string_utf8(env, value, spare.as_mut_ptr().cast(), len + 1, &mut written);
    buf.set_len(buf.len() + written);
}

/// The bytes of a string (as UTF-8) or of a buffer or view, copied out; None for anything else.
pub unsafe fn owned_bytes(env: sys::napi_env, value: sys::napi_value) -> Result<Option<Bytes>> {
    Ok(match payload(env, value)? {
        Some(Payload::Binary(bytes)) => Some(Bytes::copy_from_slice(bytes)),
        Some(Payload::Text) => {
            let len = utf8_len(env, value)?;
            let mut buf = BytesMut::with_capacity(len + 1);
            write_utf8(env, value, len, &mut buf);
            Some(buf.freeze())
        }
        None => None,
    })
}

/// The longest topic name, for the faces' own argument checks.
#[napi]
pub const MAX_TOPIC_BYTES: u32 = MAX_TOPIC_LEN as u32;

/// A topic name as JavaScript gave it, checked.
pub fn topic_name(topic: String) -> Result<String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(Error::new(Status::InvalidArg, format!("a topic is a non-empty string of at most {MAX_TOPIC_LEN} bytes")));
    }
    Ok(topic)
}
