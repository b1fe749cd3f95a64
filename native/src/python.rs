//! The Python module `etl.core._native`: typed results (`Decoded`, `CopyData`, `Row`,
//! `Rejection`) and the contract's constants (`REASONS`, `DROPPED_REPORT_KEYS`,
//! `EXPECTED_VERSION`), which Python reads from here rather than restating them. The decoding
//! itself runs with the GIL released, so the sink's thread and librdkafka's callbacks keep
//! running beside it. `etl/core/_native.pyi` states the same types for Python.

use std::os::raw::{c_int, c_void};

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDelta, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::batch::{decode_batch as decode_inputs, Input};
use crate::message::{self, decode, DROPPED_REPORT_KEYS, EXPECTED_VERSION, REASONS};

/// Binary COPY tuples of one partition's valid messages of a slice, owned by Rust and lent to
/// Python through the buffer protocol, so the batch is never copied into a `bytes` object on
/// its way to the socket.
#[pyclass(frozen, module = "etl.core._native")]
struct CopyData {
    buf: Vec<u8>,
    #[pyo3(get)]
    partition: i32,
    #[pyo3(get)]
    rows: usize,
}

#[pymethods]
impl CopyData {
    /// Tuples built elsewhere (a filtered copy of a piece, for a cold path): `data` is copied.
    #[new]
    fn new(partition: i32, rows: usize, data: &[u8]) -> Self {
        CopyData {
            buf: data.to_vec(),
            partition,
            rows,
        }
    }

    fn __len__(&self) -> usize {
        self.buf.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "CopyData(partition={}, rows={}, {} bytes)",
            self.partition,
            self.rows,
            self.buf.len()
        )
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

/// Why a message cannot be stored: `reason` is one of `REASONS`.
#[pyclass(frozen, get_all, eq, hash, module = "etl.core._native")]
#[derive(PartialEq, Eq, Hash)]
struct Rejection {
    reason: String,
    detail: String,
    request_id: Option<String>,
}

#[pymethods]
impl Rejection {
    #[new]
    #[pyo3(signature = (reason, detail, request_id=None))]
    fn new(reason: String, detail: String, request_id: Option<String>) -> Self {
        Rejection {
            reason,
            detail,
            request_id,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Rejection(reason={}, detail={}, request_id={})",
            repr(py, &self.reason)?,
            repr(py, &self.detail)?,
            repr(py, &self.request_id)?,
        ))
    }
}

impl From<message::Rejection> for Rejection {
    fn from(r: message::Rejection) -> Self {
        Rejection {
            reason: r.reason.to_owned(),
            detail: r.detail,
            request_id: r.request_id,
        }
    }
}

/// A valid report as `new_reports` stores it (`decode_one`, for inspection and tests).
#[pyclass(frozen, get_all, module = "etl.core._native")]
struct Row {
    org_id: i32,
    account_number: i32,
    cluster: String,
    report: Py<PyBytes>,
    updated_at: Py<PyDateTime>,
    account_missing: bool,
    unexpected_version: Option<String>,
    request_id: Option<String>,
}

#[pymethods]
impl Row {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Row(org_id={}, account_number={}, cluster={}, report={}, updated_at={}, \
             account_missing={}, unexpected_version={}, request_id={})",
            self.org_id,
            self.account_number,
            repr(py, &self.cluster)?,
            repr(py, &self.report)?,
            repr(py, &self.updated_at)?,
            repr(py, self.account_missing)?,
            repr(py, &self.unexpected_version)?,
            repr(py, &self.request_id)?,
        ))
    }
}

/// A slice decoded at once; indexes refer to positions in the slice.
#[pyclass(frozen, get_all, module = "etl.core._native")]
struct Decoded {
    /// `CopyData`, one per partition with valid messages.
    chunks: Py<PyList>,
    rows: usize,
    report_bytes: usize,
    missing_account: usize,
    unexpected_version: usize,
    /// (index, token) of the first message of each distinct unexpected `Version`.
    versions: Py<PyList>,
    /// (index, `Rejection`).
    rejections: Py<PyList>,
    request_ids: Py<PyList>,
}

fn repr<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> PyResult<String> {
    Ok(value.into_bound_py_any(py)?.repr()?.to_string())
}

/// Microseconds since 1970-01-01 UTC as a naive `datetime`.
fn naive_utc(py: Python<'_>, us: i64) -> PyResult<Bound<'_, PyDateTime>> {
    const DAY_US: i64 = 86_400_000_000;
    // The core accepts years 1..9999 only: the days fit an i32 many times over.
    let (days, rest) = (us.div_euclid(DAY_US), us.rem_euclid(DAY_US));
    let delta = PyDelta::new(
        py,
        days as i32,
        (rest / 1_000_000) as i32,
        (rest % 1_000_000) as i32,
        false,
    )?;
    let epoch = PyDateTime::new(py, 1970, 1, 1, 0, 0, 0, 0, None)?;
    Ok(epoch.add(delta)?.downcast_into::<PyDateTime>()?)
}

/// Decode ``messages`` (tuples of partition, offset, timestamp, value); see `etl/core/_native.pyi`.
#[pyfunction]
fn decode_batch<'py>(
    py: Python<'py>,
    messages: &Bound<'py, PyList>,
    latest_allowed_us: i64,
) -> PyResult<Decoded> {
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
    let chunks = out.pieces.into_iter().map(|p| CopyData {
        buf: p.copy,
        partition: p.partition,
        rows: p.rows,
    });
    let rejections = out
        .rejections
        .into_iter()
        .map(|(i, r)| (i, Rejection::from(r)));
    Ok(Decoded {
        chunks: PyList::new(py, chunks)?.unbind(),
        rows: out.rows,
        report_bytes: out.report_bytes,
        missing_account: out.missing_account,
        unexpected_version: out.unexpected_version,
        versions: PyList::new(py, out.versions)?.unbind(),
        rejections: PyList::new(py, rejections)?.unbind(),
        request_ids: PyList::new(py, out.request_ids)?.unbind(),
    })
}

/// One value: its `Row`, or its `Rejection`.
#[pyfunction]
fn decode_one<'py>(
    py: Python<'py>,
    value: Option<&[u8]>,
    latest_allowed_us: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let mut report = Vec::new();
    match decode(value, latest_allowed_us, &mut report) {
        Ok(row) => Ok(Bound::new(
            py,
            Row {
                org_id: row.org_id,
                account_number: row.account_number,
                cluster: String::from_utf8_lossy(&row.cluster).into_owned(),
                report: PyBytes::new(py, &report).unbind(),
                updated_at: naive_utc(py, row.updated_at)?.unbind(),
                account_missing: row.account_missing,
                unexpected_version: row.unexpected_version,
                request_id: row.request_id,
            },
        )?
        .into_any()),
        Err(r) => Ok(Bound::new(py, Rejection::from(r))?.into_any()),
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CopyData>()?;
    m.add_class::<Decoded>()?;
    m.add_class::<Rejection>()?;
    m.add_class::<Row>()?;
    m.add("REASONS", PyTuple::new(m.py(), REASONS)?)?;
    m.add(
        "DROPPED_REPORT_KEYS",
        PyTuple::new(m.py(), DROPPED_REPORT_KEYS)?,
    )?;
    m.add("EXPECTED_VERSION", EXPECTED_VERSION)?;
    m.add_function(wrap_pyfunction!(decode_batch, m)?)?;
    m.add_function(wrap_pyfunction!(decode_one, m)?)?;
    Ok(())
}
