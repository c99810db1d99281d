using System.Text.Json;
using MLNetTransformerExtensions.Checkpoints;

namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// Which files of a hub snapshot make a checkpoint (the names live in <see cref="CheckpointFiles"/>): the shards an
/// index names, and whether a snapshot folder is complete. Hub shard names may sit in subfolders of the repository.
/// </summary>
internal static class HubSnapshotFiles
{
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
        if (!File.Exists(Path.Combine(snapshotFolder, CheckpointFiles.ConfigName)))
        {
            return false;
        }

        foreach (var weights in CheckpointFiles.WeightNames)
        {
            var path = Path.Combine(snapshotFolder, weights);
            if (File.Exists(path))
            {
                return !CheckpointFiles.IsIndex(weights)
                    || ShardsOf(path, repoId, weights).All(shard => File.Exists(Path.Combine([snapshotFolder, .. shard.Split('/')])));
            }
        }

        return false;
    }
}
