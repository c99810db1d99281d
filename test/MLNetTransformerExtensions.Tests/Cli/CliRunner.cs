namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>Runs the built CLI (<c>mlnet-transformers.dll</c>, copied beside the tests) as a separate process.</summary>
internal static class CliRunner
{
    public static (int ExitCode, string StdOut, string StdErr) Run(string arguments, string? workingDirectory = null, TimeSpan? timeout = null, IDictionary<string, string>? environment = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "mlnet-transformers.dll");
        Assert.IsTrue(File.Exists(dll), $"The CLI is not beside the tests: {dll}");
        return TestPaths.Run("dotnet", $"\"{dll}\" {arguments}", workingDirectory ?? AppContext.BaseDirectory, timeout ?? TimeSpan.FromMinutes(20), environment);
    }
}
