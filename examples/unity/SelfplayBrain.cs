// UNTESTED HERE: Unity does not run on this project's machines. Written against Unity Sentis 2.1
// (com.unity.sentis; Unity 6 renames it "Inference Engine", namespace Unity.InferenceEngine, with
// the same calls). Read examples/unity/README.md first.
//
// A selfplay brain as a Unity component: import brain.onnx as a ModelAsset and brain.json as a
// TextAsset, fill `Observation` from your game state as the manifest's planes say, and call
// Decide(). The manifest (not the model's metadata, which Sentis does not expose) tells the
// observation size, the action table and the plane offsets.
using System;
using System.Collections.Generic;
using Unity.Sentis;
using UnityEngine;

[Serializable] public class BrainPlane { public int index; public string name; public string meaning; public int offset; }
[Serializable] public class BrainObservation { public int[] shape; public int size; public BrainPlane[] planes; }
[Serializable] public class BrainAction { public int index; public string text; }
[Serializable] public class BrainActions { public int count; public BrainAction[] table; }
[Serializable] public class BrainGame { public string name; public string tag; }
[Serializable] public class BrainManifest { public string format; public int format_version; public string kind; public BrainGame game; public BrainObservation observation; public BrainActions actions; }

public class SelfplayBrain : MonoBehaviour
{
    public ModelAsset model;      // brain.onnx
    public TextAsset manifestJson; // brain.json
    public string expectedTag = "arena_v1"; // the game version your encoder was written for

    public BrainManifest Manifest { get; private set; }
    Worker worker;
    Dictionary<string, int> planeOffset;

    void Awake()
    {
        Manifest = JsonUtility.FromJson<BrainManifest>(manifestJson.text);
        if (Manifest.format != "selfplay-brain" || Manifest.format_version != 1 || Manifest.kind != "brain")
            throw new InvalidOperationException("not a version 1 selfplay brain manifest (brain.json)");
        if (Manifest.game.tag != expectedTag)
            throw new InvalidOperationException($"the brain is for {Manifest.game.tag}; this encoder was written for {expectedTag}");
        planeOffset = new Dictionary<string, int>();
        foreach (var p in Manifest.observation.planes) planeOffset[p.name] = p.offset;
        worker = new Worker(ModelLoader.Load(model), BackendType.CPU); // tiny networks: the CPU beats a GPU round trip
    }

    /// The feature index of (plane, row, col): offset + row * W + col (docs/export.md).
    public int Feature(string plane, int row, int col)
    {
        if (!planeOffset.TryGetValue(plane, out int offset))
            throw new KeyException($"the brain has no plane '{plane}': its encoding changed, update your encoder");
        return offset + row * Manifest.observation.shape[2] + col;
    }

    /// probs[A] for one observation (float[D]) and mask (1 = legal); illegal actions get exactly 0.
    public float[] Evaluate(float[] observation, float[] mask)
    {
        int d = Manifest.observation.size, a = Manifest.actions.count;
        using var obs = new Tensor<float>(new TensorShape(1, d), observation);
        using var actionMask = new Tensor<float>(new TensorShape(1, a), mask);
        worker.SetInput("obs", obs);
        worker.SetInput("action_mask", actionMask);
        worker.Schedule();
        using var probs = (worker.PeekOutput("probs") as Tensor<float>).ReadbackAndClone();
        return probs.DownloadToArray();
    }

    /// The most probable legal action (ties: the lowest index), and its name from the manifest.
    public int Decide(float[] observation, float[] mask, out string actionText)
    {
        float[] probs = Evaluate(observation, mask);
        int best = 0;
        for (int i = 1; i < probs.Length; i++) if (probs[i] > probs[best]) best = i;
        actionText = Manifest.actions.table[best].text;
        return best;
    }

    void OnDestroy() => worker?.Dispose();

    class KeyException : Exception { public KeyException(string m) : base(m) { } }
}
