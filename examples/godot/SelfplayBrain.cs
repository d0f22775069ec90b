// UNTESTED HERE: Godot does not run on this project's machines. For Godot 4 with C# (.NET 8) and
// the Microsoft.ML.OnnxRuntime NuGet package; read examples/godot/README.md first.
//
// A selfplay brain as a Godot node: loads brain.onnx and brain.json (res:// or user://), checks
// the manifest, and answers Evaluate / Decide for flat observations built from the manifest's
// planes (docs/export.md has a worked example).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json;
using Godot;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

public partial class SelfplayBrain : Node
{
    [Export] public string BrainDir = "res://brains/arena";
    [Export] public string ExpectedTag = "arena_v1"; // the game version your encoder was written for

    public int ObsSize { get; private set; }
    public int NumActions { get; private set; }
    public int Width { get; private set; }
    public string[] ActionText { get; private set; }
    InferenceSession session;
    readonly Dictionary<string, int> planeOffset = new();

    public override void _Ready()
    {
        using var manifest = JsonDocument.Parse(FileAccess.GetFileAsString($"{BrainDir}/brain.json"));
        var m = manifest.RootElement;
        if (m.GetProperty("format").GetString() != "selfplay-brain" || m.GetProperty("format_version").GetInt32() != 1)
            throw new InvalidOperationException($"{BrainDir}: not a version 1 selfplay brain");
        string tag = m.GetProperty("game").GetProperty("tag").GetString();
        if (tag != ExpectedTag) throw new InvalidOperationException($"the brain is for {tag}; this encoder was written for {ExpectedTag}");
        var observation = m.GetProperty("observation");
        ObsSize = observation.GetProperty("size").GetInt32();
        Width = observation.GetProperty("shape")[2].GetInt32();
        foreach (var plane in observation.GetProperty("planes").EnumerateArray())
            planeOffset[plane.GetProperty("name").GetString()] = plane.GetProperty("offset").GetInt32();
        var actions = m.GetProperty("actions");
        NumActions = actions.GetProperty("count").GetInt32();
        ActionText = actions.GetProperty("table").EnumerateArray().Select(a => a.GetProperty("text").GetString()).ToArray();

        byte[] model = FileAccess.GetFileAsBytes($"{BrainDir}/{m.GetProperty("model_file").GetString()}");
        string sha = Convert.ToHexString(SHA256.HashData(model)).ToLowerInvariant();
        if (sha != m.GetProperty("sha256").GetString()) throw new InvalidOperationException("brain.onnx: its sha256 is not the manifest's");
        var options = new SessionOptions { IntraOpNumThreads = 1 };
        session = new InferenceSession(model, options);
    }

    /// The feature index of (plane, row, col): offset + row * W + col.
    public int Feature(string plane, int row, int col) =>
        planeOffset.TryGetValue(plane, out int offset) ? offset + row * Width + col
            : throw new KeyNotFoundException($"the brain has no plane '{plane}': its encoding changed, update your encoder");

    /// probs[A] for one observation float[D] and mask float[A] (1 = legal).
    public float[] Evaluate(float[] observation, float[] mask)
    {
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("obs", new DenseTensor<float>(observation, new[] { 1, ObsSize })),
            NamedOnnxValue.CreateFromTensor("action_mask", new DenseTensor<float>(mask, new[] { 1, NumActions })),
        };
        using var results = session.Run(inputs, new[] { "probs" });
        return results.First().AsEnumerable<float>().ToArray();
    }

    /// The most probable legal action (ties: the lowest index).
    public int Decide(float[] observation, float[] mask)
    {
        float[] probs = Evaluate(observation, mask);
        int best = 0;
        for (int i = 1; i < probs.Length; i++) if (probs[i] > probs[best]) best = i;
        return best;
    }

    public override void _ExitTree() => session?.Dispose();
}
