using System.Text.Json;
using System.Text.Unicode;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>Finds and loads the weights of a HuggingFace model folder, single-file or sharded, safetensors or PyTorch.</summary>
public static class CheckpointFiles
{
    /// <summary>The single-file safetensors checkpoint name HuggingFace writes.</summary>
    public const string SafeTensorsName = "model.safetensors";

    /// <summary>The index of a sharded safetensors checkpoint.</summary>
    public const string SafeTensorsIndexName = "model.safetensors.index.json";

    /// <summary>The single-file PyTorch checkpoint name HuggingFace writes.</summary>
    public const string PyTorchName = "pytorch_model.bin";

    /// <summary>The index of a sharded PyTorch checkpoint.</summary>
    public const string PyTorchIndexName = "pytorch_model.bin.index.json";

    /// <summary>The model's configuration.</summary>
    internal const string ConfigName = "config.json";

    /// <summary>Weight files in the order transformers looks for them: safetensors before PyTorch, a single file before an index.</summary>
    internal static readonly string[] WeightNames = [SafeTensorsName, SafeTensorsIndexName, PyTorchName, PyTorchIndexName];

    /// <summary>Tokenizer files, each optional: which of them a model has depends on its tokenizer.</summary>
    internal static readonly string[] TokenizerNames =
    [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "added_tokens.json",
    ];

    /// <summary>Whether a weight file name is a sharded checkpoint's index (<c>*.index.json</c>), which names its shards in <c>weight_map</c>.</summary>
    internal static bool IsIndex(string fileName) => fileName.EndsWith(".index.json", StringComparison.Ordinal);

    /// <summary>
    /// Finds the weight files of a model folder, preferring, as HuggingFace does, <c>model.safetensors</c>, then
    /// <c>model.safetensors.index.json</c> (every shard its <c>weight_map</c> lists), then <c>pytorch_model.bin</c>,
    /// then <c>pytorch_model.bin.index.json</c>.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The full paths of the weight files (shards in name order), or null when the folder has no weights
    /// (a config-only folder, for training from scratch).</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointException">An index is damaged, or lists a shard that is missing or outside the folder.</exception>
    public static string[]? FindWeights(string folder) => Locate(folder)?.Files;

    /// <summary>Loads every tensor of a model folder's weights (see <see cref="FindWeights"/>) onto the CPU.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>
    /// The tensors by name: floating-point data as float32, integer buffers as int64. The caller owns them; they
    /// join the caller's dispose scope if one is open.
    /// </returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointException">
    /// The folder has no weights, a file is damaged or hostile, a shard lacks a tensor its index places there, or
    /// two shards hold the same tensor.
    /// </exception>
    public static Dictionary<string, torch.Tensor> LoadStateDict(string folder) => LoadStateDict(folder, out _);

    /// <summary>As <see cref="LoadStateDict(string)"/>, also telling which file each tensor came from, for messages.</summary>
    internal static Dictionary<string, torch.Tensor> LoadStateDict(string folder, out IReadOnlyDictionary<string, string> files)
    {
        var weights = Locate(folder) ?? throw new CheckpointException(folder, null,
            $"the folder has no weights: expected {SafeTensorsName}, {SafeTensorsIndexName}, {PyTorchName} or {PyTorchIndexName}.");
        TorchRuntime.EnsureInitialized();

        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        var origin = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string file in weights.Files)
        {
            var shard = weights.SafeTensors ? SafeTensorsFile.Read(file) : PyTorchCheckpointFile.Read(file);
            foreach (var (name, tensor) in shard)
            {
                if (!tensors.TryAdd(name, tensor))
                    throw new CheckpointException(file, name, $"this tensor is also in '{origin[name]}'; each tensor belongs to one shard.");
                origin[name] = file;
            }
        }

        foreach (var (name, shard) in weights.WeightMap ?? [])
        {
            if (origin.GetValueOrDefault(name) != shard)
                throw new CheckpointException(weights.Index!, name, $"the index places this tensor in '{Path.GetFileName(shard)}', but that shard does not hold it.");
        }

        foreach (var tensor in tensors.Values)
            tensor.MoveToOuterDisposeScope();
        files = origin;
        return tensors;
    }

    /// <summary>A folder's weight files; for a sharded checkpoint also its index and the index's weight_map.</summary>
    private sealed record Weights(string[] Files, bool SafeTensors, string? Index, Dictionary<string, string>? WeightMap);

    private static Weights? Locate(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");

        foreach (var (name, safeTensors, sharded) in new[]
        {
            (SafeTensorsName, true, false), (SafeTensorsIndexName, true, true), (PyTorchName, false, false), (PyTorchIndexName, false, true),
        })
        {
            string path = Path.GetFullPath(Path.Combine(folder, name));
            if (!File.Exists(path))
                continue;
            if (!sharded)
                return new Weights([path], safeTensors, null, null);

            var weightMap = ReadShardIndex(path);
            return new Weights(weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(), safeTensors, path, weightMap);
        }

        return null;
    }

    /// <summary>Reads an index's weight_map: tensor name to the full path of its shard, each checked to be a file in the index's folder.</summary>
    internal static Dictionary<string, string> ReadShardIndex(string indexPath)
    {
        string folder = Path.GetDirectoryName(indexPath)!;
        var json = File.ReadAllBytes(indexPath).AsMemory();
        if (json.Span.StartsWith("\uFEFF"u8))
            json = json[3..];
        if (!Utf8.IsValid(json.Span))
            throw new CheckpointException(indexPath, null, "the index is not valid UTF-8 text.");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CheckpointException(indexPath, null, $"the index is not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var weightMap) || weightMap.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(indexPath, null, "the index has no \"weight_map\" object mapping tensor names to shard files.");

            var shards = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in weightMap.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointException(indexPath, entry.Name, "the weight_map value is not a shard file name.");
                string shard = entry.Value.GetString()!;

                // A shard is a file beside the index: a path that climbs out or roots elsewhere is refused.
                if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or ".." || shard.Contains('\\') || Path.IsPathRooted(shard)
                    || shard.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
                    throw new CheckpointException(indexPath, entry.Name, $"the weight_map points at '{shard}', which is not a file name in the model folder.");
                string shardPath = Path.Combine(folder, shard);
                if (!File.Exists(shardPath))
                    throw new CheckpointException(indexPath, entry.Name, $"the weight_map points at '{shard}', which is missing from the model folder.");
                if (!shards.TryAdd(entry.Name, shardPath))
                    throw new CheckpointException(indexPath, entry.Name, "the weight_map lists this tensor twice.");
            }

            if (shards.Count == 0)
                throw new CheckpointException(indexPath, null, "the weight_map is empty.");
            return shards;
        }
    }
}
