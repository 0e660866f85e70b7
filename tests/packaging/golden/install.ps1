<#
.SYNOPSIS
    Installs the fieldpost agent on this Windows PC as a service and enrols it with the collector.
.DESCRIPTION
    Rendered from packaging/windows/install.ps1 for fieldpost 0.1.0. Run in an elevated PowerShell:
        powershell -NoProfile -ExecutionPolicy Bypass -File install.ps1 -Collector URL -Token TOKEN
    1. Finds Python 3.12 for all users, or installs it (winget, else the python.org installer).
    2. Installs the agent into that Python (not a virtual environment: pywin32 services cannot run from one).
    3. Runs `fieldpost-agent install`: writes the configuration, enrols with the token, registers the
       service (restarted on failure, logging to the Application event log) and starts it.
    Running it again changes nothing; -Package upgrades (e.g. -Package "fieldpost==1.2.0"). -CaFile pins a
    private CA; -InsecureHttp allows a plain http:// collector on another machine (not recommended).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $Collector,
    [Parameter(Mandatory = $true)] [string] $Token,
    [string] $Package = "fieldpost==0.1.0",
    [string] $CaFile = "",
    [switch] $InsecureHttp
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version 3

$principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw "Run this script in an elevated PowerShell (Run as administrator)."
}

function Find-Python {
    # Only an all-users installation: a service runs as LocalSystem and cannot use a per-user Python.
    $candidate = Join-Path $env:ProgramFiles "Python312\python.exe"
    if (Test-Path $candidate) { return $candidate }
    return $null
}

function Install-Python {
    $winget = Get-Command winget.exe -ErrorAction SilentlyContinue
    if ($winget) {
        & $winget.Source install --exact --id "Python.Python.3.12" --scope machine --silent `
            --accept-package-agreements --accept-source-agreements
        if ($LASTEXITCODE -eq 0) { return }
        Write-Warning "winget could not install Python (exit $LASTEXITCODE); using the python.org installer."
    }
    $installer = Join-Path $env:TEMP "python-3.12.10-amd64.exe"
    Invoke-WebRequest -UseBasicParsing -OutFile $installer `
        -Uri "https://www.python.org/ftp/python/3.12.10/python-3.12.10-amd64.exe"
    $process = Start-Process -FilePath $installer -Wait -PassThru `
        -ArgumentList "/quiet", "InstallAllUsers=1", "PrependPath=0", "Include_test=0", "Include_launcher=0"
    Remove-Item $installer
    if ($process.ExitCode -ne 0) { throw "The Python installer failed (exit $($process.ExitCode))." }
}

$python = Find-Python
if (-not $python) {
    Write-Host "Installing Python 3.12 for all users"
    Install-Python
    $python = Find-Python
    if (-not $python) { throw "Python 3.12 is still not in $env:ProgramFiles after installing it." }
}

& $python -m pip install --quiet --disable-pip-version-check $Package
if ($LASTEXITCODE -ne 0) { throw "pip could not install $Package (exit $LASTEXITCODE)." }

$agent = Join-Path (Split-Path $python) "Scripts\fieldpost-agent.exe"
$extra = @()
if ($CaFile) { $extra += @("--ca-file", $CaFile) }
if ($InsecureHttp) { $extra += "--insecure-http" }
& $agent install --collector $Collector --token $Token @extra
exit $LASTEXITCODE
