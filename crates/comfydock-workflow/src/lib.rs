//! Pure ComfyUI workflow parsing, analysis, validation and conversion (no IO).
