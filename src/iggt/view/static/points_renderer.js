// WebGL2 point-cloud renderer: points coloured by RGB, instance or feature PCA, camera frusta,
// a confidence cut in the vertex shader, and picking through an instance-ID framebuffer.
"use strict";

const POINT_VS = `#version 300 es
in vec3 a_position; in vec3 a_rgb; in vec3 a_pca; in uint a_id; in float a_conf;
uniform mat4 u_mvp; uniform int u_mode; uniform float u_min_conf; uniform uint u_selected;
uniform float u_point_size; uniform bool u_pick; uniform sampler2D u_palette;
flat out vec4 v_colour;
void main() {
  if (a_conf < u_min_conf) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); gl_PointSize = 1.0; return; }
  gl_Position = u_mvp * vec4(a_position, 1.0);
  gl_PointSize = u_point_size;
  if (u_pick) {
    v_colour = vec4(float(a_id & 255u), float((a_id >> 8) & 255u), float((a_id >> 16) & 255u), 255.0) / 255.0;
    return;
  }
  vec3 colour = u_mode == 0 ? a_rgb : (u_mode == 2 ? a_pca : texelFetch(u_palette, ivec2(int(a_id), 0), 0).rgb);
  if (u_selected != 0u) {
    if (a_id == u_selected) { colour = mix(texelFetch(u_palette, ivec2(int(a_id), 0), 0).rgb, vec3(1.0), 0.25); gl_PointSize = u_point_size + 1.0; }
    else { colour *= 0.3; }
  }
  v_colour = vec4(colour, 1.0);
}`;
const POINT_FS = `#version 300 es
precision mediump float; flat in vec4 v_colour; out vec4 colour;
void main() { colour = v_colour; }`;
const LINE_VS = `#version 300 es
in vec3 a_position; in vec3 a_colour; uniform mat4 u_mvp; out vec3 v_colour;
void main() { gl_Position = u_mvp * vec4(a_position, 1.0); v_colour = a_colour; }`;
const LINE_FS = `#version 300 es
precision mediump float; in vec3 v_colour; out vec4 colour;
void main() { colour = vec4(v_colour, 1.0); }`;

function compile(gl, vs, fs) {
  const program = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  return program;
}

// Column-major 4x4 matrices, as WebGL takes them.
function perspective(fovy, aspect, near, far) {
  const f = 1 / Math.tan(fovy / 2), d = near - far;
  return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / d, -1, 0, 0, 2 * far * near / d, 0];
}
function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
function normalise(a) { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }
function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
function lookAt(eye, target, up) {
  const z = normalise(sub(eye, target)), x = normalise(cross(up, z)), y = cross(z, x);
  return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0, -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
}
function multiply(a, b) {
  const out = new Array(16).fill(0);
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) out[c * 4 + r] += a[k * 4 + r] * b[c * 4 + k];
  return out;
}

class PointsRenderer {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl2", { antialias: false });
    if (!gl) throw new Error("this browser has no WebGL2; the 3D view needs it");
    this.gl = gl;
    this.pointProgram = compile(gl, POINT_VS, POINT_FS);
    this.lineProgram = compile(gl, LINE_VS, LINE_FS);
    this.count = 0; this.lineCount = 0; this.boxCount = 0;
    this.mode = 0; this.minConf = 0; this.selected = 0; this.pointSize = 2;
    // OpenCV world (y down, z forward): orbit about the target with -y as up, starting behind the first camera.
    this.up = [0, -1, 0]; this.target = [0, 0, 1]; this.distance = 1; this.yaw = 0; this.pitch = 0;
    this.frameRequested = false;
    this.installControls();
  }

  // buffer: ArrayBuffer laid out as meta.layout says (iggt/view/scene_buffers.py).
  setScene(meta, buffer) {
    const gl = this.gl, n = meta.num_points, offsets = {};
    for (const entry of meta.layout) offsets[entry.name] = entry.offset;
    this.vao && gl.deleteVertexArray(this.vao);
    this.vao = gl.createVertexArray();
    gl.bindVertexArray(this.vao);
    this.pointBuffer && gl.deleteBuffer(this.pointBuffer);
    this.pointBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, this.pointBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, buffer, gl.STATIC_DRAW);
    const p = this.pointProgram, attribute = (name) => gl.getAttribLocation(p, name);
    const floats = (name, size, type, normalised, offset) => {
      const loc = attribute(name); gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, size, type, normalised, 0, offset);
    };
    floats("a_position", 3, gl.FLOAT, false, offsets.xyz);
    floats("a_rgb", 3, gl.UNSIGNED_BYTE, true, offsets.rgb);
    floats("a_pca", 3, gl.UNSIGNED_BYTE, true, offsets.pca);
    floats("a_conf", 1, gl.UNSIGNED_BYTE, true, offsets.confidence_rank);
    const idLoc = attribute("a_id"); gl.enableVertexAttribArray(idLoc);
    gl.vertexAttribIPointer(idLoc, 1, gl.UNSIGNED_INT, 0, offsets.instance_id);
    gl.bindVertexArray(null);
    this.count = n;
    this.setPalette(meta.instances);
    this.setFrusta(meta.frusta);
    this.setBox(null);
    this.target = meta.bounds.centre.slice(); this.radius = meta.bounds.radius;
    // Start a little behind the first camera (the world origin), looking at the scene's centre.
    this.distance = Math.max(Math.hypot(...this.target), this.radius * 0.5) + 0.8 * this.radius;
    const direction = normalise(this.target);
    this.yaw = Math.atan2(direction[0], direction[2]); this.pitch = Math.asin(-direction[1]);
    this.draw();
  }

  setPalette(instances) {
    const gl = this.gl, width = Math.max(1, ...instances.map((row) => row.id + 1));
    const data = new Uint8Array(width * 4).fill(128);
    for (const row of instances) data.set([...row.colour, 255], row.id * 4);
    this.palette && gl.deleteTexture(this.palette);
    this.palette = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, this.palette);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, width, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, data);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
  }

  setFrusta(frusta) {
    const vertices = [];
    frusta.forEach((segments, view) => {
      const colour = view === 0 ? [0.9, 0.25, 0.25] : [0.25, 0.5, 0.9];
      for (const [a, b] of segments) vertices.push(...a, ...colour, ...b, ...colour);
    });
    [this.lineVao, this.lineCount] = this.lines(this.lineVao, vertices);
  }

  // The selected instance's oriented box: 8 corners, corner 4 ix + 2 iy + iz at signs (ix, iy, iz); null clears it.
  setBox(corners) {
    const vertices = [], colour = [1.0, 0.9, 0.3];
    for (let i = 0; corners && i < 8; i++) for (let j = i + 1; j < 8; j++) {
      if ([1, 2, 4].includes(i ^ j)) vertices.push(...corners[i], ...colour, ...corners[j], ...colour);
    }
    [this.boxVao, this.boxCount] = this.lines(this.boxVao, vertices);
    this.requestDraw();
  }

  // A vertex array of line segments from [x, y, z, r, g, b] vertices, replacing ``old``.
  lines(old, vertices) {
    const gl = this.gl;
    old && gl.deleteVertexArray(old);
    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(vertices), gl.STATIC_DRAW);
    const position = gl.getAttribLocation(this.lineProgram, "a_position");
    const colour = gl.getAttribLocation(this.lineProgram, "a_colour");
    gl.enableVertexAttribArray(position); gl.vertexAttribPointer(position, 3, gl.FLOAT, false, 24, 0);
    gl.enableVertexAttribArray(colour); gl.vertexAttribPointer(colour, 3, gl.FLOAT, false, 24, 12);
    gl.bindVertexArray(null);
    return [vao, vertices.length / 6];
  }

  eye() {
    const c = Math.cos(this.pitch);
    const direction = [Math.sin(this.yaw) * c, -Math.sin(this.pitch), Math.cos(this.yaw) * c];
    return sub(this.target, direction.map((v) => v * this.distance));
  }

  mvp() {
    const aspect = this.canvas.width / Math.max(this.canvas.height, 1);
    const scale = this.radius || 1;
    const projection = perspective(50 * Math.PI / 180, aspect, scale * 0.005, scale * 50 + this.distance);
    return multiply(projection, lookAt(this.eye(), this.target, this.up));
  }

  // Canvas pixel (CSS pixels from the top-left) of a world point; null behind the eye.
  project(point) {
    const m = this.mvp(), v = [...point, 1], clip = [0, 0, 0, 0];
    for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) clip[r] += m[k * 4 + r] * v[k];
    if (clip[3] <= 0) return null;
    const rect = this.canvas.getBoundingClientRect();
    return [(clip[0] / clip[3] + 1) / 2 * rect.width, (1 - clip[1] / clip[3]) / 2 * rect.height, clip[2] / clip[3]];
  }

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const width = Math.max(1, Math.round(rect.width)), height = Math.max(1, Math.round(rect.height));
    if (this.canvas.width !== width || this.canvas.height !== height) { this.canvas.width = width; this.canvas.height = height; }
  }

  render(pick) {
    const gl = this.gl;
    this.resize();
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(pick ? 0 : 0.05, pick ? 0 : 0.05, pick ? 0 : 0.06, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    const mvp = this.mvp();
    if (this.count) {
      gl.useProgram(this.pointProgram);
      const u = (name) => gl.getUniformLocation(this.pointProgram, name);
      gl.uniformMatrix4fv(u("u_mvp"), false, mvp);
      gl.uniform1i(u("u_mode"), this.mode);
      gl.uniform1f(u("u_min_conf"), this.minConf);
      gl.uniform1ui(u("u_selected"), this.selected);
      gl.uniform1f(u("u_point_size"), pick ? Math.max(this.pointSize, 3) : this.pointSize);
      gl.uniform1i(u("u_pick"), pick ? 1 : 0);
      gl.activeTexture(gl.TEXTURE0); gl.bindTexture(gl.TEXTURE_2D, this.palette); gl.uniform1i(u("u_palette"), 0);
      gl.bindVertexArray(this.vao);
      gl.drawArrays(gl.POINTS, 0, this.count);
    }
    if (!pick) {
      gl.useProgram(this.lineProgram);
      gl.uniformMatrix4fv(gl.getUniformLocation(this.lineProgram, "u_mvp"), false, mvp);
      for (const [vao, count] of [[this.lineVao, this.lineCount], [this.boxVao, this.boxCount]]) {
        if (count) { gl.bindVertexArray(vao); gl.drawArrays(gl.LINES, 0, count); }
      }
    }
    gl.bindVertexArray(null);
  }

  draw() { this.render(false); }

  requestDraw() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => { this.frameRequested = false; this.draw(); });
  }

  // The instance ID drawn at canvas pixel (x, y) (CSS pixels), 0 for none: one frame into an ID framebuffer.
  pick(x, y) {
    const gl = this.gl;
    this.resize();
    const width = this.canvas.width, height = this.canvas.height;
    const framebuffer = gl.createFramebuffer(), colour = gl.createRenderbuffer(), depth = gl.createRenderbuffer();
    gl.bindRenderbuffer(gl.RENDERBUFFER, colour); gl.renderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, width, height);
    gl.bindRenderbuffer(gl.RENDERBUFFER, depth); gl.renderbufferStorage(gl.RENDERBUFFER, gl.DEPTH_COMPONENT24, width, height);
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, colour);
    gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.DEPTH_ATTACHMENT, gl.RENDERBUFFER, depth);
    this.render(true);
    const rect = this.canvas.getBoundingClientRect(), pixel = new Uint8Array(4);
    const px = Math.floor(x * width / rect.width), py = height - 1 - Math.floor(y * height / rect.height);
    gl.readPixels(px, py, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.deleteFramebuffer(framebuffer); gl.deleteRenderbuffer(colour); gl.deleteRenderbuffer(depth);
    this.draw();
    return pixel[0] + (pixel[1] << 8) + (pixel[2] << 16);
  }

  installControls() {
    const canvas = this.canvas;
    let drag = null;
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, moved: false, pan: event.shiftKey || event.button === 2 };
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      drag.x = event.clientX; drag.y = event.clientY;
      if (drag.pan) {
        const m = lookAt(this.eye(), this.target, this.up), s = this.distance / canvas.clientHeight;
        const right = [m[0], m[4], m[8]], upward = [m[1], m[5], m[9]];
        this.target = this.target.map((v, i) => v - (right[i] * dx - upward[i] * dy) * s);
      } else {
        this.yaw -= dx * 0.005;
        this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + dy * 0.005));
      }
      this.requestDraw();
    });
    canvas.addEventListener("pointerup", (event) => {
      const click = drag && !drag.moved;
      drag = null;
      if (click && this.onPick) {
        const rect = canvas.getBoundingClientRect();
        this.onPick(this.pick(event.clientX - rect.left, event.clientY - rect.top));
      }
    });
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.distance *= Math.exp(event.deltaY * 0.001);
      this.requestDraw();
    }, { passive: false });
    window.addEventListener("resize", () => this.requestDraw());
  }
}
window.PointsRenderer = PointsRenderer;
