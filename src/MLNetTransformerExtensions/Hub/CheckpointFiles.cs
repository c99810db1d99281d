using System.Text.Json;

namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// The files a transformers checkpoint is made of, in the order transformers looks for them: the config, then the
/// weights (safetensors before <c>pytorch_model.bin</c>, a single file before a sharded index), then the tokenizer.
/// </summary>
internal static class CheckpointFiles
{
    internal const string Config = "config.json";

    /// <summary>Weight files by preference; an index (<c>*.index.json</c>) names its shards in <c>weight_map</c>.</summary>
    internal static readonly string[] Weights =
    [
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ];

    /// <summary>Tokenizer files, each optional: which of them a model has depends on its tokenizer.</summary>
    internal static readonly string[] Tokenizer =
    [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "added_tokens.json",
    ];

    internal static bool IsIndex(string fileName) => fileName.EndsWith(".index.json", StringComparison.Ordinal);

    /// <summary>The shard file names an index's <c>weight_map</c> points to, in first-seen order.</summary>
    internal static IReadOnlyList<string> ShardsOf(string indexPath, string repoId, string indexName)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("no \"weight_map\" object");
            }

            var shards = new List<string>();
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.GetString() is { Length: > 0 } shard && !shards.Contains(shard))
                {
                    if (shard.StartsWith('/') || shard.Split('/').Any(segment => segment is "" or "." or ".."))
                    {
                        throw new JsonException($"shard name '{shard}' leaves the repository");
                    }

                    shards.Add(shard);
                }
            }

            return shards;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new HubException(
                HubErrorKind.IncompleteCheckpoint, repoId, null, indexName,
                $"The weight index '{indexName}' of repository '{repoId}' cannot be read ({e.Message}; {indexPath}). Delete that file from the cache and run again.",
                e);
        }
    }

    /// <summary>
    /// Whether a snapshot folder holds a loadable checkpoint: the config and one complete set of weights. A
    /// snapshot Python filled for another purpose (only a config, say) does not count.
    /// </summary>
    internal static bool IsComplete(string snapshotFolder, string repoId)
    {
        if (!File.Exists(Path.Combine(snapshotFolder, Config)))
        {
            return false;
        }

        foreach (var weights in Weights)
        {
            var path = Path.Combine(snapshotFolder, weights);
            if (File.Exists(path))
            {
                return !IsIndex(weights)
                    || ShardsOf(path, repoId, weights).All(shard => File.Exists(Path.Combine([snapshotFolder, .. shard.Split('/')])));
            }
        }

        return false;
    }
}
