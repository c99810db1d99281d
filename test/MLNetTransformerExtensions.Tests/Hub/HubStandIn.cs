using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace MLNetTransformerExtensions.Tests.Hub;

/// <summary>
/// A stand-in for the HuggingFace Hub on 127.0.0.1, serving one fixture folder as repository <see cref="RepoId"/>
/// with the hub's endpoints, status codes and headers:
/// <list type="bullet">
/// <item><c>GET /api/models/{repo}/revision/{rev}</c>: <c>sha</c> and <c>siblings</c>.</item>
/// <item><c>HEAD|GET /{repo}/resolve/{rev}/{file}</c>: small files answer 200 with <c>ETag</c> = git blob SHA-1;
/// LFS files (<c>*.safetensors</c>, <c>*.bin</c>) answer 302 to <c>/cdn/{sha256}</c> with <c>X-Linked-Etag</c> and
/// <c>X-Linked-Size</c>; all carry <c>X-Repo-Commit</c>. Errors carry <c>X-Error-Code</c>.</item>
/// <item><c>GET /cdn/{sha256}</c>: the LFS content, honouring <c>Range</c>.</item>
/// </list>
/// Revisions <c>main</c>, <c>v1</c> and the commit itself resolve to <see cref="Commit"/>. <see cref="PrivateRepoId"/>
/// needs <see cref="Token"/>; <see cref="RenamedRepoId"/> redirects (relative) to the repository.
/// </summary>
internal sealed class HubStandIn : IDisposable
{
    internal const string RepoId = "tiny/bert";
    internal const string PrivateRepoId = "tiny/private";
    internal const string RenamedRepoId = "tiny/old-bert";
    internal const string Token = "hf_standin_token";
    internal const string Commit = "4f3c2b1a09d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4";
    private const int MaxRequests = 500;

    private readonly HttpListener listener = new();
    private readonly Dictionary<string, byte[]> files;
    private readonly Task loop;
    private int requestCount;

    internal HubStandIn(string folder)
    {
        files = Directory.GetFiles(folder).ToDictionary(path => Path.GetFileName(path), File.ReadAllBytes);
        for (var attempt = 0; ; attempt++)
        {
            var port = FreePort();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                Endpoint = $"http://127.0.0.1:{port}";
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Prefixes.Clear();
            }
        }

        loop = Task.Run(ServeAsync);
    }

    internal string Endpoint { get; }

    internal bool ApiEnabled { get; set; } = true;

    /// <summary>Sends half of an LFS file's (remaining) bytes, then drops the connection.</summary>
    internal bool CutLfsTransfers { get; set; }

    /// <summary>Answers every LFS GET with the whole file, as servers without Range support do.</summary>
    internal bool IgnoreRanges { get; set; }

    /// <summary>Serves LFS content with one byte changed (same size, wrong SHA-256).</summary>
    internal bool CorruptLfsContent { get; set; }

    internal ConcurrentQueue<Request> Requests { get; } = new();

    /// <summary>GETs that carried file content (resolve of small files, CDN of LFS files).</summary>
    internal int ContentTransfers => Requests.Count(r => r.Method == "GET" && !r.Path.StartsWith("/api/", StringComparison.Ordinal) && r.Status is 200 or 206);

    internal IReadOnlyDictionary<string, byte[]> Files => files;

    internal static string GitBlobSha1(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));

    internal static bool IsLfs(string fileName) => fileName.EndsWith(".safetensors", StringComparison.Ordinal) || fileName.EndsWith(".bin", StringComparison.Ordinal);

    public void Dispose()
    {
        if (!listener.IsListening)
        {
            return;
        }

        listener.Stop();
        listener.Close();
        loop.Wait(TimeSpan.FromSeconds(5));
    }

    private static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private async Task ServeAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // stopped
            }

            _ = Task.Run(() => Handle(context));
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var path = Uri.UnescapeDataString(request.Url!.AbsolutePath);
        var authorized = request.Headers["Authorization"] == $"Bearer {Token}";
        try
        {
            if (Interlocked.Increment(ref requestCount) > MaxRequests)
            {
                Finish(response, request, 503);
            }
            else if (path.StartsWith("/api/models/", StringComparison.Ordinal))
            {
                ServeApi(request, response, path["/api/models/".Length..], authorized);
            }
            else if (path.StartsWith("/cdn/", StringComparison.Ordinal))
            {
                ServeCdn(request, response, path["/cdn/".Length..]);
            }
            else
            {
                ServeResolve(request, response, path.TrimStart('/'), authorized);
            }
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // the client went away
        }
    }

    private void ServeApi(HttpListenerRequest request, HttpListenerResponse response, string rest, bool authorized)
    {
        // {owner}/{name}/revision/{revision}
        var parts = rest.Split('/', 4);
        if (!ApiEnabled || parts.Length < 4 || parts[2] != "revision")
        {
            Finish(response, request, 404);
            return;
        }

        var repoId = $"{parts[0]}/{parts[1]}";
        if (repoId == RenamedRepoId)
        {
            response.Headers["Location"] = $"/api/models/{RepoId}/revision/{Uri.EscapeDataString(parts[3])}";
            Finish(response, request, 307);
            return;
        }

        if (!CheckRepoAndRevision(request, response, repoId, parts[3], authorized))
        {
            return;
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(new
        {
            id = repoId,
            sha = Commit,
            siblings = files.Keys.Order(StringComparer.Ordinal).Select(name => new { rfilename = name }),
        });
        response.ContentType = "application/json";
        Finish(response, request, 200, body);
    }

    private void ServeResolve(HttpListenerRequest request, HttpListenerResponse response, string path, bool authorized)
    {
        // {owner}/{name}/resolve/{revision}/{file}
        var parts = path.Split('/', 5);
        if (parts.Length < 5 || parts[2] != "resolve")
        {
            Finish(response, request, 404);
            return;
        }

        var repoId = $"{parts[0]}/{parts[1]}";
        if (repoId == RenamedRepoId)
        {
            response.Headers["Location"] = $"/{RepoId}/resolve/{Uri.EscapeDataString(parts[3])}/{parts[4]}";
            Finish(response, request, 307);
            return;
        }

        if (!CheckRepoAndRevision(request, response, repoId, parts[3], authorized))
        {
            return;
        }

        response.Headers["X-Repo-Commit"] = Commit;
        if (!files.TryGetValue(parts[4], out var content))
        {
            response.Headers["X-Error-Code"] = "EntryNotFound";
            response.Headers["X-Error-Message"] = "Entry not found";
            Finish(response, request, 404);
            return;
        }

        if (IsLfs(parts[4]))
        {
            var sha256 = Convert.ToHexStringLower(SHA256.HashData(content));
            var pointer = Encoding.ASCII.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {content.Length}\n");
            response.Headers["ETag"] = $"\"{GitBlobSha1(pointer)}\"";
            response.Headers["X-Linked-Etag"] = $"\"{sha256}\"";
            response.Headers["X-Linked-Size"] = content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            response.Headers["Location"] = $"{Endpoint}/cdn/{sha256}";
            Finish(response, request, 302);
            return;
        }

        response.Headers["ETag"] = $"\"{GitBlobSha1(content)}\"";
        Finish(response, request, 200, content);
    }

    private void ServeCdn(HttpListenerRequest request, HttpListenerResponse response, string sha256)
    {
        var content = files.Values.FirstOrDefault(bytes => Convert.ToHexStringLower(SHA256.HashData(bytes)) == sha256);
        if (content is null)
        {
            Finish(response, request, 404);
            return;
        }

        if (CorruptLfsContent)
        {
            content = [.. content];
            content[content.Length / 2] ^= 0xFF;
        }

        var start = 0;
        var range = request.Headers["Range"];
        if (!IgnoreRanges && range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')
            && int.TryParse(range["bytes=".Length..^1], out start) && start < content.Length)
        {
            response.Headers["Content-Range"] = $"bytes {start}-{content.Length - 1}/{content.Length}";
        }
        else
        {
            start = 0;
        }

        var body = content[start..];
        if (CutLfsTransfers)
        {
            Record(request, start > 0 ? 206 : 200);
            response.StatusCode = start > 0 ? 206 : 200;
            response.ContentLength64 = body.Length;
            response.OutputStream.Write(body, 0, body.Length / 2);
            response.OutputStream.Flush();
            response.Abort();
            return;
        }

        Finish(response, request, start > 0 ? 206 : 200, body);
    }

    private bool CheckRepoAndRevision(HttpListenerRequest request, HttpListenerResponse response, string repoId, string revision, bool authorized)
    {
        if (repoId == PrivateRepoId && !authorized)
        {
            response.Headers["X-Error-Message"] = "Invalid credentials in Authorization header";
            Finish(response, request, 401);
            return false;
        }

        if (repoId != RepoId && repoId != PrivateRepoId)
        {
            response.Headers["X-Error-Code"] = "RepoNotFound";
            response.Headers["X-Error-Message"] = "Repository not found";
            Finish(response, request, 404);
            return false;
        }

        if (revision is not ("main" or "v1" or Commit))
        {
            response.Headers["X-Error-Code"] = "RevisionNotFound";
            response.Headers["X-Error-Message"] = "Invalid rev id: " + revision;
            Finish(response, request, 404);
            return false;
        }

        return true;
    }

    private void Finish(HttpListenerResponse response, HttpListenerRequest request, int status, byte[]? body = null)
    {
        Record(request, status);
        response.StatusCode = status;
        response.ContentLength64 = body?.Length ?? 0;
        if (body is not null && request.HttpMethod != "HEAD")
        {
            response.OutputStream.Write(body);
        }

        response.Close();
    }

    private void Record(HttpListenerRequest request, int status) =>
        Requests.Enqueue(new Request(request.HttpMethod, request.Url!.AbsolutePath, request.Headers["Range"], request.Headers["Authorization"] is not null, status));

    internal sealed record Request(string Method, string Path, string? Range, bool HadAuthorization, int Status);
}
