//! Why ComfyUI died at start-up, read from what it printed: an import of a package that is not
//! installed (ComfyUI imports some packages it does not declare, e.g. v0.3.77 and `requests`).

use serde::Serialize;

/// ComfyUI died because Python could not import a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingModule {
    /// The module Python could not find, as it printed it (`cv2`, `google.protobuf`).
    pub module: String,
    /// The PyPI package that most likely provides it (`opencv-python`).
    pub package: String,
}

const MARKER: &str = "ModuleNotFoundError: No module named '";

/// The missing module, if `output` (ComfyUI's log or stderr) ends with Python's report of a
/// `ModuleNotFoundError`. Only the last line counts: a custom node that fails to import is logged
/// with the same traceback, but ComfyUI carries on and prints more after it.
pub fn missing_module(output: &str) -> Option<MissingModule> {
    let last = output
        .lines()
        .map(|line| line.trim_end_matches('\r').trim_end())
        .rfind(|line| !line.is_empty())?;
    let module = last.strip_prefix(MARKER)?.strip_suffix('\'')?;
    if module.is_empty() || module.contains(char::is_whitespace) {
        return None;
    }
    Some(MissingModule {
        module: module.to_owned(),
        package: package_for_import(module),
    })
}

/// Import names whose PyPI package is called something else.
const PACKAGE_OF_IMPORT: &[(&str, &str)] = &[
    ("attr", "attrs"),
    ("bs4", "beautifulsoup4"),
    ("Crypto", "pycryptodome"),
    ("cv2", "opencv-python"),
    ("dateutil", "python-dateutil"),
    ("docx", "python-docx"),
    ("dotenv", "python-dotenv"),
    ("fitz", "pymupdf"),
    ("git", "gitpython"),
    ("jwt", "pyjwt"),
    ("llama_cpp", "llama-cpp-python"),
    ("magic", "python-magic"),
    ("mpl_toolkits", "matplotlib"),
    ("OpenSSL", "pyopenssl"),
    ("PIL", "pillow"),
    ("pptx", "python-pptx"),
    ("serial", "pyserial"),
    ("skimage", "scikit-image"),
    ("sklearn", "scikit-learn"),
    ("socks", "pysocks"),
    ("usb", "pyusb"),
    ("websocket", "websocket-client"),
    ("win32api", "pywin32"),
    ("yaml", "pyyaml"),
    ("zmq", "pyzmq"),
];

/// Dotted imports whose package is not named after the top-level module.
const PACKAGE_OF_DOTTED_IMPORT: &[(&str, &str)] = &[("google.protobuf", "protobuf")];

/// The PyPI package that provides `module`: a known rename (`cv2` → `opencv-python`), else the
/// top-level module name itself (`a.b` → `a`).
pub fn package_for_import(module: &str) -> String {
    if let Some((_, package)) = PACKAGE_OF_DOTTED_IMPORT
        .iter()
        .find(|(prefix, _)| module == *prefix || module.starts_with(&format!("{prefix}.")))
    {
        return (*package).to_owned();
    }
    let top = module.split('.').next().unwrap_or(module);
    PACKAGE_OF_IMPORT
        .iter()
        .find(|(import, _)| *import == top)
        .map_or_else(|| top.to_owned(), |(_, package)| (*package).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEBACK: &str = "Total VRAM 0 MB\nTraceback (most recent call last):\n  File \"/c/main.py\", line 12, in <module>\n    import requests\nModuleNotFoundError: No module named 'requests'\n";

    #[test]
    fn the_last_line_of_a_traceback_names_the_module() {
        assert_eq!(
            missing_module(TRACEBACK),
            Some(MissingModule {
                module: "requests".into(),
                package: "requests".into()
            })
        );
        let crlf = TRACEBACK.replace('\n', "\r\n") + "\r\n\r\n";
        assert_eq!(missing_module(&crlf).unwrap().module, "requests");
        let dotted = "ModuleNotFoundError: No module named 'skimage.metrics'";
        assert_eq!(missing_module(dotted).unwrap().package, "scikit-image");
    }

    #[test]
    fn a_custom_node_import_failure_that_comfyui_survives_is_not_a_cause() {
        let survived = format!(
            "{TRACEBACK}Cannot import /c/custom_nodes/x module for custom nodes: No module named 'requests'\nStarting server\n"
        );
        assert_eq!(missing_module(&survived), None);
        assert_eq!(missing_module(""), None);
        assert_eq!(
            missing_module("ImportError: cannot import name 'x' from 'y'"),
            None
        );
    }

    #[test]
    fn import_names_map_to_pypi_packages() {
        for (module, package) in [
            ("cv2", "opencv-python"),
            ("PIL", "pillow"),
            ("PIL.Image", "pillow"),
            ("yaml", "pyyaml"),
            ("skimage", "scikit-image"),
            ("sklearn", "scikit-learn"),
            ("google.protobuf", "protobuf"),
            ("google.protobuf.message", "protobuf"),
            ("requests", "requests"),
            ("huggingface_hub.utils", "huggingface_hub"),
        ] {
            assert_eq!(package_for_import(module), package, "{module}");
        }
    }
}
