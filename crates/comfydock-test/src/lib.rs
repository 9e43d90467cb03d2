//! Test support for comfydock.
//!
//! Stand-ins for the internet services comfydock talks to, all local and built at test time:
//! [`file_server`] (model downloads), [`wheel_index`] (PyPI and the PyTorch indexes),
//! [`registry`] (the ComfyUI Registry and ComfyUI-Manager data files), [`comfyui_repo`] (a ComfyUI git
//! repository whose `main.py` serves `/system_stats` and `/object_info`) and [`node_repo`] (custom
//! nodes from git), and real servers started by tests: [`postgres`] (PostgreSQL) and [`s3_server`]
//! (moto, an S3-compatible server). Fixture builders panic with a message naming what failed: in a
//! test that is the clearest possible error.

pub mod archive;
pub mod comfyui_contract;
pub mod comfyui_repo;
pub mod comfyui_server;
pub mod context;
pub mod file_server;
pub mod git;
pub mod git_server;
pub mod http;
pub mod json_request;
pub mod node_repo;
pub mod node_source;
pub mod postgres;
pub mod python_server;
pub mod real_torch_index;
pub mod realworld;
pub mod registry;
pub mod s3_server;
pub mod standins;
pub mod tools;
pub mod wheel_index;
