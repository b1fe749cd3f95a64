//! The Python module `etl.core._native`. The decoding itself runs with the GIL released, so the
//! sink's thread and librdkafka's callbacks keep running beside it.

use std::os::raw::{c_int, c_void};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::batch::{decode_batch as decode_inputs, Input};
use crate::message::decode;

/// Binary COPY tuples owned by Rust and lent to Python through the buffer protocol, so the
/// batch is never copied into a `bytes` object on its way to the socket.
#[pyclass(frozen, module = "etl.core._native")]
struct CopyData {
    buf: Vec<u8>,
}

#[pymethods]
impl CopyData {
    fn __len__(&self) -> usize {
        self.buf.len()
    }

    /// # Safety
    /// Called by CPython with a valid `view`; the buffer stays alive as long as the view
    /// holds its reference to this (immutable) object.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("no buffer view"));
        }
        let buf = &slf.get().buf;
        let filled = ffi::PyBuffer_FillInfo(
            view,
            slf.as_ptr(),
            buf.as_ptr() as *mut c_void,
            buf.len() as ffi::Py_ssize_t,
            1,
            flags,
        );
        if filled == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

type BatchResult<'py> = (
    CopyData,
    usize,
    usize,
    usize,
    usize,
    Vec<(usize, String)>,
    Vec<(usize, &'static str, String, Option<String>)>,
    Vec<String>,
);

/// Decode ``messages`` (tuples of partition, offset, timestamp, value); see `etl/core/_native.pyi`.
#[pyfunction]
fn decode_batch<'py>(
    py: Python<'py>,
    messages: &Bound<'py, PyList>,
    latest_allowed_us: i64,
) -> PyResult<BatchResult<'py>> {
    let mut values: Vec<Option<Bound<'py, PyBytes>>> = Vec::with_capacity(messages.len());
    let mut coords = Vec::with_capacity(messages.len());
    for item in messages.iter() {
        let t = item.downcast::<PyTuple>()?;
        let value = t.get_item(3)?;
        coords.push((
            t.get_item(0)?.extract::<i32>()?,
            t.get_item(1)?.extract::<i64>()?,
        ));
        values.push(if value.is_none() {
            None
        } else {
            Some(value.downcast_into::<PyBytes>()?)
        });
    }
    let inputs: Vec<Input> = values
        .iter()
        .zip(&coords)
        .map(|(value, &(partition, offset))| Input {
            value: value.as_ref().map(|b| b.as_bytes()),
            partition,
            offset,
        })
        .collect();
    let out = py.allow_threads(|| decode_inputs(&inputs, latest_allowed_us));
    let rejections = out
        .rejections
        .into_iter()
        .map(|(i, r)| (i, r.reason, r.detail, r.request_id))
        .collect();
    Ok((
        CopyData { buf: out.copy },
        out.rows,
        out.report_bytes,
        out.missing_account,
        out.unexpected_version,
        out.versions,
        rejections,
        out.request_ids,
    ))
}

/// One value: the row's fields, or (reason, detail, request id) for a rejection.
#[pyfunction]
fn decode_one<'py>(
    py: Python<'py>,
    value: Option<&[u8]>,
    latest_allowed_us: i64,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut report = Vec::new();
    match decode(value, latest_allowed_us, &mut report) {
        Ok(row) => (
            row.org_id,
            row.account_number,
            row.account_missing,
            String::from_utf8_lossy(&row.cluster).into_owned(),
            PyBytes::new(py, &report),
            row.updated_at,
            row.unexpected_version,
            row.request_id,
        )
            .into_pyobject(py),
        Err(r) => (r.reason, r.detail, r.request_id).into_pyobject(py),
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CopyData>()?;
    m.add_function(wrap_pyfunction!(decode_batch, m)?)?;
    m.add_function(wrap_pyfunction!(decode_one, m)?)?;
    Ok(())
}
