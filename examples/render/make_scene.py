"""Builds examples/render/scene.blend, the render class's test scene.

Run it with Blender (3.4 from Debian) from the repository root:

    blender -b --factory-startup -noaudio --python-exit-code 1 --python examples/render/make_scene.py -- examples/render/scene.blend

A ground plane, a cube, a sphere and a cone under a sun and a sky colour, seen by one camera:
the sky fills the top of the frame and the ground the bottom, so a band of rows rendered from
the wrong end of the frame is easy to tell apart. Over frames 1-4 the cube turns and the sphere
moves. Cycles on the CPU at 160x120, 16 samples, seed 0, no denoising; saved compressed.
"""

import math
import os
import sys

import bpy

output = os.path.abspath(sys.argv[sys.argv.index("--") + 1])

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene


def material(name, rgb):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1.0)
    return mat


def add(obj, mat):
    obj.data.materials.append(mat)
    return obj


bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 0, 0))
add(bpy.context.object, material("ground", (0.35, 0.3, 0.25)))

bpy.ops.mesh.primitive_cube_add(size=1.5, location=(-1.8, 0, 0.75))
cube = add(bpy.context.object, material("red", (0.8, 0.1, 0.1)))

bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(0.4, 1.0, 0.8))
sphere = add(bpy.context.object, material("blue", (0.1, 0.2, 0.8)))

bpy.ops.mesh.primitive_cone_add(radius1=0.7, depth=1.6, location=(2.0, -0.5, 0.8))
add(bpy.context.object, material("green", (0.1, 0.6, 0.2)))

for frame, (angle, x) in enumerate([(0, 0.4), (20, 0.6), (40, 0.8), (60, 1.0)], start=1):
    cube.rotation_euler = (0, 0, math.radians(angle))
    cube.keyframe_insert("rotation_euler", frame=frame)
    sphere.location.x = x
    sphere.keyframe_insert("location", frame=frame)

bpy.ops.object.light_add(type="SUN", location=(4, -4, 8))
sun = bpy.context.object
sun.rotation_euler = (math.radians(40), 0, math.radians(30))
sun.data.energy = 3.0

bpy.ops.object.camera_add(location=(0, -8, 2.2), rotation=(math.radians(84), 0, 0))
scene.camera = bpy.context.object

world = bpy.data.worlds.new("sky")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.45, 0.6, 0.85, 1.0)
scene.world = world

scene.frame_start = 1
scene.frame_end = 4
scene.render.engine = "CYCLES"
scene.render.resolution_x = 160
scene.render.resolution_y = 120
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.cycles.device = "CPU"
scene.cycles.samples = 16
scene.cycles.seed = 0
scene.cycles.use_denoising = False

bpy.ops.wm.save_as_mainfile(filepath=output, compress=True)
