//! ComfyUI model folder keys, their directories under `models/`, legacy aliases and the file
//! extensions that count as models.

/// ComfyUI folder keys and the directories (under a `models/` root) that feed each one, in
/// ComfyUI's order. Legacy directory names come second (`clip` for `text_encoders`, `unet` for
/// `diffusion_models`).
pub const COMFYUI_FOLDERS: &[(&str, &[&str])] = &[
    ("checkpoints", &["checkpoints"]),
    ("configs", &["configs"]),
    ("loras", &["loras"]),
    ("vae", &["vae"]),
    ("text_encoders", &["text_encoders", "clip"]),
    ("diffusion_models", &["diffusion_models", "unet"]),
    ("clip_vision", &["clip_vision"]),
    ("style_models", &["style_models"]),
    ("embeddings", &["embeddings"]),
    ("diffusers", &["diffusers"]),
    ("vae_approx", &["vae_approx"]),
    ("controlnet", &["controlnet", "t2i_adapter"]),
    ("gligen", &["gligen"]),
    ("upscale_models", &["upscale_models"]),
    ("latent_upscale_models", &["latent_upscale_models"]),
    ("hypernetworks", &["hypernetworks"]),
    ("photomaker", &["photomaker"]),
    ("classifiers", &["classifiers"]),
    ("model_patches", &["model_patches"]),
    ("audio_encoders", &["audio_encoders"]),
];

/// The folder key a directory name stands for: legacy names map to the current key
/// (`unet` → `diffusion_models`, `clip` → `text_encoders`, `t2i_adapter` → `controlnet`);
/// anything else (custom-node folders like `ultralytics`) is kept as it is.
pub fn folder_key(dir_name: &str) -> &str {
    match dir_name {
        "unet" => "diffusion_models",
        "clip" => "text_encoders",
        "t2i_adapter" => "controlnet",
        other => other,
    }
}

/// ComfyUI's `supported_pt_extensions` plus common non-PyTorch model formats.
pub const MODEL_EXTENSIONS: &[&str] = &[
    "ckpt",
    "pt",
    "pt2",
    "bin",
    "pth",
    "safetensors",
    "pkl",
    "sft",
    "onnx",
    "gguf",
    "ggml",
    "engine",
    "tflite",
];

/// Whether a file name has a model extension (case-insensitive).
pub fn is_model_file_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && MODEL_EXTENSIONS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(ext))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_extensions() {
        assert_eq!(folder_key("unet"), "diffusion_models");
        assert_eq!(folder_key("clip"), "text_encoders");
        assert_eq!(folder_key("loras"), "loras");
        assert_eq!(folder_key("ultralytics"), "ultralytics");
        assert!(is_model_file_name("a.safetensors"));
        assert!(is_model_file_name("B.CKPT"));
        assert!(is_model_file_name("q4.gguf"));
        assert!(!is_model_file_name("notes.txt"));
        assert!(!is_model_file_name("a.safetensors.part"));
        assert!(!is_model_file_name(".safetensors"));
        assert!(!is_model_file_name("safetensors"));
    }
}
