using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>Where a run stands, as <c>trainer_state.json</c> records it.</summary>
internal sealed record TrainerState
{
    /// <summary>Optimiser steps done.</summary>
    public required int Step { get; init; }

    /// <summary>Steps planned.</summary>
    public required int TotalSteps { get; init; }

    /// <summary>0-based pass over the training text the next step draws from.</summary>
    public required int Epoch { get; init; }

    /// <summary>Sequences of that epoch already trained on.</summary>
    public required long SequencesInEpoch { get; init; }

    /// <summary>Real tokens trained on so far.</summary>
    public required long TokensSeen { get; init; }

    /// <summary>Seconds spent in training steps so far.</summary>
    public required double TrainingSeconds { get; init; }

    /// <summary>Tokens per packed sequence.</summary>
    public required int MaxLength { get; init; }

    /// <summary>The options that decide the result (see <see cref="Pretrainer"/>), which a resumed run must repeat.</summary>
    public required JsonObject Options { get; init; }

    /// <summary>The training files, which a resumed run must repeat.</summary>
    public required List<InputFile> Inputs { get; init; }

    /// <summary>The validation files, if given.</summary>
    public required List<InputFile> ValidationInputs { get; init; }

    /// <summary>Losses of the last steps, for the reported moving average.</summary>
    public required List<double> RecentLosses { get; init; }

    /// <summary>Validation measurements so far.</summary>
    public required List<ValidationPoint> Validation { get; init; }

    /// <summary>Whether the run trained its own vocabulary.</summary>
    public required bool TrainedTokenizer { get; init; }

    /// <summary>What loading the starting checkpoint found, when continuing a pretrained model.</summary>
    public string? LoadReport { get; init; }

    /// <summary>SHA-256 of every other file of the checkpoint, by name; filled in when written.</summary>
    public Dictionary<string, string> Files { get; init; } = [];
}

/// <summary>A validation loss measured at a step (step 0: before training).</summary>
internal sealed record ValidationPoint(int Step, double Loss);

/// <summary>
/// The resumable state of a run in <c>&lt;output&gt;/checkpoint/</c>: a HuggingFace folder (config.json,
/// model.safetensors, tokenizer files) plus <c>optimizer.safetensors</c> (AdamW's <c>exp_avg</c>, <c>exp_avg_sq</c> and
/// <c>step</c> per parameter) and <c>trainer_state.json</c> (step, data position, options, input hashes, and the SHA-256
/// of every other file). A checkpoint is written into a hidden sibling folder and renamed into place, so a crash
/// leaves the previous one whole.
/// </summary>
internal static class PretrainingCheckpoint
{
    public const string FolderName = "checkpoint";
    public const string StateFile = "trainer_state.json";
    public const string OptimizerFile = "optimizer.safetensors";
    private const string PreviousFolderName = "checkpoint.previous";
    private const string PartialPrefix = ".checkpoint.partial-";
    private const string Format = "mlnet-transformers-pretraining";
    private const int Version = 1;

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <summary>
    /// The checkpoint folder of a run, or null when there is none. A crash between the two renames of
    /// <see cref="Write"/> leaves only the previous checkpoint, which is then the one to resume.
    /// </summary>
    public static string? Find(string output)
    {
        var current = Path.Combine(output, FolderName);
        if (File.Exists(Path.Combine(current, StateFile)))
        {
            return current;
        }

        var previous = Path.Combine(output, PreviousFolderName);
        return File.Exists(Path.Combine(previous, StateFile)) ? previous : null;
    }

    /// <summary>Removes half-written checkpoints a crash left behind.</summary>
    public static void RemovePartial(string output)
    {
        if (!Directory.Exists(output))
        {
            return;
        }

        foreach (var partial in Directory.EnumerateDirectories(output, PartialPrefix + "*"))
        {
            Directory.Delete(partial, recursive: true);
        }
    }

    public static void Write(string output, LanguageModel model, TransformerTokenizer tokenizer, JsonObject config, AdamW optimizer,
        IReadOnlyList<string> parameterNames, TrainerState state)
    {
        using var scope = NewDisposeScope();
        var partial = Path.Combine(output, PartialPrefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(partial);
        try
        {
            PretrainedModelFolder.WriteModel(partial, model, tokenizer, config);
            SafeTensorsFile.Write(Path.Combine(partial, OptimizerFile), OptimizerTensors(optimizer, parameterNames), new Dictionary<string, string> { ["format"] = "pt" });

            var files = Directory.EnumerateFiles(partial).Order(StringComparer.Ordinal)
                .ToDictionary(f => Path.GetFileName(f), Sha256, StringComparer.Ordinal);
            var json = JsonSerializer.SerializeToNode(state with { Files = files }, Json)!.AsObject();
            json.Insert(0, "format", Format);
            json.Insert(1, "version", Version);
            File.WriteAllText(Path.Combine(partial, StateFile), json.ToJsonString(Json));

            var current = Path.Combine(output, FolderName);
            var previous = Path.Combine(output, PreviousFolderName);
            if (Directory.Exists(previous))
            {
                Directory.Delete(previous, recursive: true);
            }

            if (Directory.Exists(current))
            {
                Directory.Move(current, previous);
            }

            Directory.Move(partial, current);
            if (Directory.Exists(previous))
            {
                Directory.Delete(previous, recursive: true);
            }
        }
        finally
        {
            if (Directory.Exists(partial))
            {
                Directory.Delete(partial, recursive: true);
            }
        }
    }

    /// <summary>
    /// Reads <c>trainer_state.json</c> and checks every file it lists against its recorded SHA-256, so a damaged or
    /// replaced file is named before anything is loaded.
    /// </summary>
    /// <exception cref="CheckpointException">A file is missing, unreadable or changed since the checkpoint was written.</exception>
    public static TrainerState ReadState(string folder)
    {
        var statePath = Path.Combine(folder, StateFile);
        JsonObject json;
        TrainerState state;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(statePath)) as JsonObject
                ?? throw new JsonException("the top level is not a JSON object");
            if (json["format"]?.GetValue<string>() != Format || json["version"]?.GetValue<int>() != Version)
            {
                throw new JsonException($"it is not a version-{Version} {Format} state");
            }

            state = json.Deserialize<TrainerState>(Json) ?? throw new JsonException("it is empty");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException)
        {
            throw new CheckpointException(statePath, null,
                $"the training state cannot be read ({e.Message}). The checkpoint is damaged: restore it, or start again without resuming in a new output folder.", e);
        }

        foreach (var needed in new[] { CheckpointFiles.SafeTensorsName, OptimizerFile, "config.json" })
        {
            if (!state.Files.ContainsKey(needed))
            {
                throw new CheckpointException(statePath, null, $"the training state lists no {needed}. The checkpoint is damaged: restore it, or start again without resuming in a new output folder.");
            }
        }

        foreach (var (name, hash) in state.Files)
        {
            var path = Path.Combine(folder, name);
            if (!File.Exists(path))
            {
                throw new CheckpointException(path, null, $"the file is missing, but {StateFile} lists it. The checkpoint is incomplete: restore the file, or start again without resuming in a new output folder.");
            }

            if (!string.Equals(Sha256(path), hash, StringComparison.Ordinal))
            {
                throw new CheckpointException(path, null,
                    $"the file is corrupt: its SHA-256 differs from the one {StateFile} recorded when the checkpoint was written. Restore the file, or start again without resuming in a new output folder.");
            }
        }

        return state;
    }

    /// <summary>Loads the checkpoint's weights and AdamW state into a freshly built model and optimiser.</summary>
    /// <exception cref="CheckpointException">A tensor is missing or has another shape.</exception>
    public static void Restore(string folder, LanguageModel model, AdamW optimizer, IReadOnlyList<string> parameterNames)
    {
        var modelPath = Path.Combine(folder, CheckpointFiles.SafeTensorsName);
        var weights = SafeTensorsFile.Read(modelPath);
        try
        {
            var report = TransformerModels.LoadWeights(model, weights, modelPath);
            if (!report.IsComplete)
            {
                throw new CheckpointException(modelPath, null, $"the weights do not fill the model: {report}");
            }
        }
        finally
        {
            DisposeAll(weights);
        }

        var optimizerPath = Path.Combine(folder, OptimizerFile);
        var moments = SafeTensorsFile.Read(optimizerPath);
        try
        {
            using var _ = no_grad();
            var states = optimizer.state_dict().State;
            for (var i = 0; i < parameterNames.Count; i++)
            {
                var state = (AdamW.State)states[i];
                var name = parameterNames[i];
                Copy(moments, optimizerPath, $"exp_avg/{name}", state.exp_avg);
                Copy(moments, optimizerPath, $"exp_avg_sq/{name}", state.exp_avg_sq);
                state.step = Get(moments, optimizerPath, $"step/{name}", [1]).item<long>();
            }
        }
        finally
        {
            DisposeAll(moments);
        }
    }

    private static IEnumerable<KeyValuePair<string, Tensor>> OptimizerTensors(AdamW optimizer, IReadOnlyList<string> parameterNames)
    {
        var states = optimizer.state_dict().State;
        for (var i = 0; i < parameterNames.Count; i++)
        {
            var state = (AdamW.State)states[i];
            yield return new($"exp_avg/{parameterNames[i]}", state.exp_avg);
            yield return new($"exp_avg_sq/{parameterNames[i]}", state.exp_avg_sq);
            yield return new($"step/{parameterNames[i]}", tensor(new[] { state.step }));
        }
    }

    private static void Copy(Dictionary<string, Tensor> tensors, string path, string name, Tensor target) =>
        target.copy_(Get(tensors, path, name, target.shape));

    private static Tensor Get(Dictionary<string, Tensor> tensors, string path, string name, long[] shape)
    {
        if (!tensors.TryGetValue(name, out var tensor))
        {
            throw new CheckpointException(path, name, "the optimiser state has no such tensor: it belongs to another model. Start again without resuming in a new output folder.");
        }

        if (!tensor.shape.SequenceEqual(shape))
        {
            throw new CheckpointException(path, name, $"the tensor has shape [{string.Join(", ", tensor.shape)}], but the model needs [{string.Join(", ", shape)}].");
        }

        return tensor;
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void DisposeAll(Dictionary<string, Tensor> tensors)
    {
        foreach (var tensor in tensors.Values)
        {
            tensor.Dispose();
        }
    }
}
