using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Replies kept on disk, one small JSON file per request, named by the SHA-256 of the exact request (model id,
/// messages, options; <see cref="ChatPrompt.Describe"/>). The key or the endpoint is never part of a request's
/// description, so neither reaches the cache. Writes go to a temporary file that is then renamed, so a reader or a
/// crash never sees half a file, and several processes may share one folder.
/// </summary>
/// <remarks>
/// <c>Microsoft.Extensions.AI</c>'s caching client stores the whole response, but drops its raw representation, which is
/// where the OpenAI client keeps the token log-probabilities; this cache keeps them, and nothing else.
/// </remarks>
internal sealed class ChatResponseCache(string directory)
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public static string KeyOf(string request) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(request)));

    /// <summary>The cached reply, or null when there is none (or the file is unreadable, which then counts as a miss).</summary>
    public ChatReply? TryGet(string key)
    {
        var path = PathOf(key);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) is JsonObject json ? ChatReply.FromJson(json) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null;
        }
    }

    public void Set(string key, ChatReply reply)
    {
        var path = PathOf(key);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(temporary, reply.ToJson().ToJsonString());
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    // Two hex digits of sub-folder keep folders small on a long evaluation.
    private string PathOf(string key) => Path.Combine(Directory, key[..2], key + ".json");
}
