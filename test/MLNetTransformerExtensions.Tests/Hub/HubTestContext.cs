using System.Security.Cryptography;
using MLNetTransformerExtensions.Hub;

namespace MLNetTransformerExtensions.Tests.Hub;

/// <summary>A temporary cache, the bert fixture folder and helpers shared by the hub tests.</summary>
public abstract class HubTestContext
{
    /// <summary>What a snapshot of the bert fixture must hold (expected.json is not a checkpoint file).</summary>
    internal static readonly string[] CheckpointFiles =
        ["config.json", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt"];

    private readonly List<IDisposable> disposables = [];

    internal static string FixtureFolder => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf-tiny", "bert");

    internal string Root { get; private set; } = "";

    internal string Cache => Path.Combine(Root, "cache");

    internal string RepoFolder => Path.Combine(Cache, "models--tiny--bert");

    internal string SnapshotFolder => Path.Combine(RepoFolder, "snapshots", HubStandIn.Commit);

    [TestInitialize]
    public void CreateRoot()
    {
        Root = Path.Combine(Path.GetTempPath(), "mlnet-hub-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    [TestCleanup]
    public void DeleteRoot()
    {
        foreach (var disposable in disposables)
        {
            disposable.Dispose();
        }

        Directory.Delete(Root, recursive: true);
    }

    internal HubStandIn StartHub(string? folder = null) => Track(new HubStandIn(folder ?? FixtureFolder));

    /// <summary>Options that ignore this machine's environment (a real HF_TOKEN, HF_HUB_OFFLINE) and use no proxy.</summary>
    internal HubOptions Options(HubStandIn? hub, bool offline = false, string? token = null) => new(_ => null)
    {
        // Nothing listens on port 9 (discard) of 127.0.0.1 here: a connection there fails at once.
        Endpoint = hub?.Endpoint ?? "http://127.0.0.1:9",
        CacheDirectory = Cache,
        Offline = offline,
        Token = token,
        // Bounds for a hung stand-in only: no test waits for them to fire, and a busy machine must not trip them.
        MetadataTimeout = TimeSpan.FromMinutes(2),
        DownloadTimeout = TimeSpan.FromMinutes(2),
        HttpMessageHandler = Track(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false }),
    };

    internal T Track<T>(T disposable)
        where T : IDisposable
    {
        disposables.Add(disposable);
        return disposable;
    }

    internal async Task<string> DownloadAsync(HubOptions options, string model = HubStandIn.RepoId, IProgress<HubDownloadProgress>? progress = null)
    {
        using var client = new HubClient(options);
        return await client.DownloadSnapshotAsync(model, progress);
    }

    internal static string EtagOf(string fileName, byte[] content) =>
        HubStandIn.IsLfs(fileName) ? Convert.ToHexStringLower(SHA256.HashData(content)) : HubStandIn.GitBlobSha1(content);

    /// <summary>Asserts the snapshot holds exactly <paramref name="expected"/>, byte for byte as in <paramref name="sourceFolder"/>.</summary>
    internal static void AssertSnapshotMatches(string snapshot, string sourceFolder, params string[] expected)
    {
        CollectionAssert.AreEquivalent(expected, Directory.GetFiles(snapshot).Select(Path.GetFileName).ToArray());
        foreach (var file in expected)
        {
            CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(sourceFolder, file)), File.ReadAllBytes(Path.Combine(snapshot, file)), file);
        }
    }

    /// <summary>Lays a cache out as Python's huggingface_hub writes it: blobs by ETag, relative links, a ref without newline.</summary>
    internal void WritePythonStyleCache()
    {
        foreach (var file in CheckpointFiles)
        {
            var content = File.ReadAllBytes(Path.Combine(FixtureFolder, file));
            var etag = EtagOf(file, content);
            Directory.CreateDirectory(Path.Combine(RepoFolder, "blobs"));
            File.WriteAllBytes(Path.Combine(RepoFolder, "blobs", etag), content);
            Directory.CreateDirectory(SnapshotFolder);
            File.CreateSymbolicLink(Path.Combine(SnapshotFolder, file), $"../../blobs/{etag}");
            Directory.CreateDirectory(Path.Combine(Cache, ".locks", "models--tiny--bert"));
            File.WriteAllBytes(Path.Combine(Cache, ".locks", "models--tiny--bert", etag + ".lock"), []);
        }

        Directory.CreateDirectory(Path.Combine(RepoFolder, "refs"));
        File.WriteAllText(Path.Combine(RepoFolder, "refs", "main"), HubStandIn.Commit);
        Directory.CreateDirectory(Path.Combine(RepoFolder, ".no_exist", HubStandIn.Commit));
        File.WriteAllBytes(Path.Combine(RepoFolder, ".no_exist", HubStandIn.Commit, "tokenizer.json"), []);
    }

    /// <summary>Collects progress events as they are reported (<see cref="Progress{T}"/> would post them later).</summary>
    internal sealed class ProgressLog : IProgress<HubDownloadProgress>
    {
        private readonly List<HubDownloadProgress> events = [];

        internal IReadOnlyList<HubDownloadProgress> Events
        {
            get
            {
                lock (events)
                {
                    return [.. events];
                }
            }
        }

        public void Report(HubDownloadProgress value)
        {
            lock (events)
            {
                events.Add(value);
            }
        }
    }
}
