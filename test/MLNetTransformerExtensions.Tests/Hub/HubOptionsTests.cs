using MLNetTransformerExtensions.Hub;

namespace MLNetTransformerExtensions.Tests.Hub;

[TestClass]
public sealed class HubOptionsTests
{
    private static readonly string Profile = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    [TestMethod]
    public void WithNoVariablesTheDefaultsArePythons()
    {
        var options = From();

        Assert.AreEqual(HubOptions.DefaultEndpoint, options.Endpoint);
        Assert.AreEqual(Path.Combine(Profile, ".cache", "huggingface", "hub"), options.CacheDirectory);
        Assert.IsFalse(options.Offline);
        Assert.AreEqual(TimeSpan.FromSeconds(10), options.MetadataTimeout);
        Assert.AreEqual(TimeSpan.FromSeconds(10), options.DownloadTimeout);
    }

    [TestMethod]
    public void TheCacheFollowsXdgThenHfHomeThenHfHubCache()
    {
        Assert.AreEqual(Path.Combine("/x", "huggingface", "hub"), From(("XDG_CACHE_HOME", "/x")).CacheDirectory);
        Assert.AreEqual(Path.Combine("/h", "hub"), From(("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/h")).CacheDirectory);
        Assert.AreEqual("/c", From(("HF_HOME", "/h"), ("HF_HUB_CACHE", "/c")).CacheDirectory);
        Assert.AreEqual("/legacy", From(("HUGGINGFACE_HUB_CACHE", "/legacy")).CacheDirectory);
        Assert.AreEqual(Profile + "/hf/hub", From(("HF_HOME", "~/hf")).CacheDirectory.Replace('\\', '/').Replace(Profile.Replace('\\', '/'), Profile, StringComparison.Ordinal));
    }

    [TestMethod]
    public void OfflineAcceptsPythonsTrueValuesOnly()
    {
        foreach (var value in new[] { "1", "on", "YES", "True" })
        {
            Assert.IsTrue(From(("HF_HUB_OFFLINE", value)).Offline, value);
        }

        foreach (var value in new[] { "0", "false", "no", "2" })
        {
            Assert.IsFalse(From(("HF_HUB_OFFLINE", value)).Offline, value);
        }

        Assert.IsTrue(From(("TRANSFORMERS_OFFLINE", "1")).Offline);
    }

    [TestMethod]
    public void TheTokenComesFromHfTokenElseTheTokenFile()
    {
        var home = Path.Combine(Path.GetTempPath(), "mlnet-hub-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(home);
        try
        {
            Assert.IsNull(From(("HF_HOME", home)).Token);
            File.WriteAllText(Path.Combine(home, "token"), "hf_from_file\n");
            Assert.AreEqual("hf_from_file", From(("HF_HOME", home)).Token);
            Assert.AreEqual("hf_from_env", From(("HF_HOME", home), ("HF_TOKEN", " hf_from_env ")).Token);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    [TestMethod]
    public void AnEndpointIsUsedWithoutItsTrailingSlashAndABadOneIsNamed()
    {
        using (var http = new HubHttp(From(("HF_ENDPOINT", "http://mirror.invalid:8080/"))))
        {
            Assert.AreEqual("http://mirror.invalid:8080", http.Endpoint);
            Assert.AreEqual("http://mirror.invalid:8080/o/n/resolve/refs%2Fpr%2F1/sub/a%20b.json", http.ResolveUri("o/n", "refs/pr/1", "sub/a b.json").AbsoluteUri);
        }

        using (var http = new HubHttp(From(("HF_ENDPOINT", "https://mirror.invalid/hf/"))))
        {
            Assert.AreEqual("https://mirror.invalid/hf", http.Endpoint);
        }

        var options = From();

        options.Endpoint = "mirror without scheme";
        var error = Assert.ThrowsExactly<ArgumentException>(() => options.EndpointUri);
        Assert.Contains("'mirror without scheme'", error.Message);
        Assert.Contains("HF_ENDPOINT", error.Message);
    }

    [TestMethod]
    public void HubIdsParseWithAnOptionalRevision()
    {
        Assert.AreEqual(new HubReference("gpt2", "main"), HubReference.Parse("gpt2"));
        Assert.AreEqual(new HubReference("google-bert/bert-base-uncased", "main"), HubReference.Parse("google-bert/bert-base-uncased"));
        Assert.AreEqual(new HubReference("owner/name", "v1.0"), HubReference.Parse("owner/name@v1.0"));
        Assert.AreEqual(new HubReference("owner/name", "refs/pr/1"), HubReference.Parse("owner/name@refs/pr/1"));
        Assert.IsTrue(HubReference.Parse($"owner/name@{HubStandIn.Commit}").RevisionIsCommit);
        Assert.IsFalse(HubReference.Parse("owner/name@main").RevisionIsCommit);
    }

    [TestMethod]
    public void MalformedIdsAreRejectedWithTheReason()
    {
        foreach (var (text, reason) in new[]
        {
            ("", "empty"),
            ("a/b/c", "at most one '/'"),
            ("owner/", "empty"),
            ("owner/-name", "start or end"),
            ("owner/na--me", "'--'"),
            ("owner/name@", "revision after '@' is empty"),
            ("owner/name@../x", "not a branch"),
            ("owner/name@a b", "not a branch"),
        })
        {
            Assert.IsFalse(HubReference.TryParse(text, out _, out var problem), text);
            Assert.Contains(reason, problem, text);
        }
    }

    private static HubOptions From(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return new HubOptions(name => map.GetValueOrDefault(name));
    }
}
