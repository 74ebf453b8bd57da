//! A scene is the requester's: a Python text block it registers to run on load must not run
//! under the render command line (`-Y`), while the same scene with scripts allowed (`-y`) runs
//! it, which shows the scene really carries such a script.

use std::path::Path;

use sgl_media::blender::{RenderSlice, render_args};

use crate::{blender, run, settings};

/// Saves a copy of the example scene at `path` with a text block, registered to run when the
/// file loads, that writes `marker`.
fn scene_with_a_load_script(blender: &Path, path: &Path, marker: &Path) {
    let script = format!(
        "import bpy
text = bpy.data.texts.new('hook.py')
text.write('open({marker:?}, \"w\").write(\"ran\")')
text.use_module = True
bpy.ops.wm.save_as_mainfile(filepath={path:?}, compress=True)
"
    );
    let scene = crate::scene();
    let args = ["-b", "--factory-startup", scene.to_str().expect("UTF-8"), "--python-exit-code", "1"];
    let mut args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    args.extend(["--python-expr".to_owned(), script]);
    let output = run(blender, &args);
    assert!(output.status.success(), "saving failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(!marker.exists(), "saving alone does not run the script");
}

#[test]
fn a_script_in_the_scene_does_not_run() {
    let Some(blender) = blender() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (scene, marker) = (dir.path().join("hooked.blend"), dir.path().join("marker"));
    scene_with_a_load_script(blender, &scene, &marker);
    let out = tempfile::tempdir().expect("a temporary directory");
    let slice = RenderSlice::band(1, 0, 8).expect("a band");
    let args = render_args(&scene, out.path(), &slice, &settings()).expect("valid arguments");

    let output = run(blender, &args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.path().join(slice.output_file_name()).is_file(), "the slice rendered");
    assert!(!marker.exists(), "the scene's script ran under -Y");

    let allowed: Vec<String> = args.iter().map(|arg| if arg == "-Y" { "-y".to_owned() } else { arg.clone() }).collect();
    assert!(run(blender, &allowed).status.success());
    assert_eq!(std::fs::read_to_string(&marker).expect("with -y the script ran"), "ran");
}
