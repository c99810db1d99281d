using System.Diagnostics;

namespace MLNetTransformerExtensions.Tests;

/// <summary>Where tests find fixtures, the repository, and how they run child processes.</summary>
internal static class TestPaths
{
    public static string Fixtures(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MLNetTransformerExtensions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (MLNetTransformerExtensions.sln) is not above the test output folder.");
    }

    public static string NewTempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mlnet-tx-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Runs a process to completion and returns its exit code and output.</summary>
    /// <remarks>
    /// <paramref name="timeout"/> only stops a hung process: callers set it to several times the slowest run seen on a
    /// busy 2-core machine, never as a speed check.
    /// </remarks>
    public static (int ExitCode, string StdOut, string StdErr) Run(string fileName, string arguments, string workingDirectory, TimeSpan timeout, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"'{fileName} {arguments}' did not finish within {timeout}.");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
